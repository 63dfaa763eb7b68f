/**
 * Where a record goes: the partitioning of Kafka's Java producer (and of kafkajs's
 * DefaultPartitioner, which the bridge used before), so keyed records land in the partitions Java
 * producers put them in. Keyed: positive murmur2 of the key bytes modulo the partition count;
 * without a key: round robin per topic from a random start.
 */

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) in 32-bit integer arithmetic. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i << 2;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length & 3;
  const tail = length & ~3;
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
 * A partition selector in the form the producer client takes: it returns a non-negative number
 * that the client reduces modulo the topic's partition count (as Java does with toPositive()).
 */
export function javaCompatiblePartitioner(): (
  message: { topic: string },
  key: Uint8Array | undefined | null,
) => number {
  const counters = new Map<string, number>();
  return (message, key) => {
    if (key) return murmur2(key) & 0x7fffffff;
    let c = counters.get(message.topic);
    if (c === undefined) c = crypto.getRandomValues(new Uint32Array(1))[0];
    c = (c + 1) >>> 0;
    // Bounded: topics come from the configured rules, but stay safe with many.
    if (counters.size >= 10_000 && !counters.has(message.topic)) counters.clear();
    counters.set(message.topic, c);
    return c & 0x7fffffff;
  };
}
