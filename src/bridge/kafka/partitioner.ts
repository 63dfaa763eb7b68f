/**
 * Where a record goes: the partitioning of Kafka's Java producer (and of kafkajs's
 * DefaultPartitioner, which the bridge used before), so keyed records land in the partitions Java
 * producers put them in. Keyed: positive murmur2 of the key bytes modulo the partition count;
 * without a key: round robin per topic from a random start.
 */

/**
 * Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) in 32-bit integer arithmetic, of
 * `length` bytes of `data` from `start` (a key inside a packed batch needs no view of its own).
 */
export function murmur2(data: Uint8Array, start = 0, length = data.length - start): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = start + (i << 2);
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const tail = start + (length & ~3);
  if (rest === 3) h ^= data[tail + 2] << 16;
  if (rest >= 2) h ^= data[tail + 1] << 8;
  if (rest >= 1) {
    h ^= data[tail];
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * Chooses partitions as non-negative numbers that the caller reduces modulo the topic's partition
 * count (as Java does with toPositive()).
 */
export class Partitioner {
  readonly #counters = new Map<string, number>();

  /** A keyed record: murmur2 of the key, `length` bytes of `data` from `start`. */
  keyed(data: Uint8Array, start: number, length: number): number {
    return murmur2(data, start, length) & 0x7fffffff;
  }

  /** A record without a key: the topic's next partition in turn. */
  unkeyed(topic: string): number {
    let c = this.#counters.get(topic);
    if (c === undefined) c = crypto.getRandomValues(new Uint32Array(1))[0];
    c = (c + 1) >>> 0;
    // Bounded: topics come from the configured rules, but stay safe with many.
    if (this.#counters.size >= 10_000 && !this.#counters.has(topic)) this.#counters.clear();
    this.#counters.set(topic, c);
    return c & 0x7fffffff;
  }
}

/** A Partitioner in the form a producer client takes (message and key). */
export function javaCompatiblePartitioner(): (
  message: { topic: string },
  key: Uint8Array | undefined | null,
) => number {
  const p = new Partitioner();
  return (message, key) => key ? p.keyed(key, 0, key.length) : p.unkeyed(message.topic);
}
