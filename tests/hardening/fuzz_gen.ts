/**
 * The fuzzer's input: valid MQTT 3.1 / 3.1.1 / 5.0 packet sequences, encoded by the project's
 * own codec, then mutated at the byte level.
 *
 * Every sequence is a pure function of (seed, index): the campaign can run thousands of
 * connections at once in any order, and one failing sequence is replayed alone from its two
 * numbers, without re-running the ones before it.
 */
import { encode } from "../../src/codec/encoder.ts";
import type { Packet, Properties, ProtocolVersion, QoS } from "../../src/codec/packets.ts";
import { mulberry32 } from "../helpers/random.ts";

/** A seeded source of choices. */
export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  /** In [0, 1). */
  float(): number {
    return this.#next();
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }
  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** The seed of sequence `index` in the campaign seeded with `seed` (a 32-bit mix of both). */
export function sequenceSeed(seed: number, index: number): number {
  const h = fmix(fmix(seed >>> 0) + Math.imul(index, 0x9e3779b9));
  return h;
}

/** MurmurHash3's finaliser: every input bit reaches every output bit. */
function fmix(h: number): number {
  h = Math.imul((h >>> 0) ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** One generated sequence, before and after mutation. */
export interface Sequence {
  index: number;
  version: ProtocolVersion;
  /** The valid packets as encoded, one entry per packet. */
  packets: Uint8Array[];
  /** What goes on the wire: the packets after mutation, in the order written. */
  chunks: Uint8Array[];
  /** The mutations applied, in order, for the replay report ("none" for a valid sequence). */
  mutations: string[];
}

// Topics and client ids come from small sets: the fuzz must stress parsing and state changes,
// not grow the broker's state without bound (session limits are another test's subject), so
// that the memory bound asserted during the fuzz says something.
const TOPICS = ["fz/a", "fz/b/c", "fz/x/y", "fz/€/ü", "fz/a/b/c/d/e"];
const FILTERS = ["fz/a", "fz/+/c", "fz/#", "fz/x/+", "fz/+", "+/b/c", "$share/g/fz/a"];
const CLIENT_IDS = 256;

function properties(rng: Rng, kind: "connect" | "publish" | "subscribe" | "will"): Properties {
  const p: Properties = {};
  if (rng.chance(0.4)) p.userProperties = [["k", "v".repeat(rng.int(20))]];
  switch (kind) {
    case "connect":
      if (rng.chance(0.5)) p.sessionExpiryInterval = rng.pick([0, 10, 0xffffffff]);
      if (rng.chance(0.3)) p.receiveMaximum = rng.range(1, 100);
      if (rng.chance(0.3)) p.maximumPacketSize = rng.range(64, 1 << 20);
      if (rng.chance(0.3)) p.topicAliasMaximum = rng.range(0, 10);
      if (rng.chance(0.2)) p.requestProblemInformation = rng.int(2);
      if (rng.chance(0.05)) p.authenticationMethod = "SCRAM-SHA-1";
      break;
    case "publish":
      if (rng.chance(0.3)) p.messageExpiryInterval = rng.range(1, 3600);
      if (rng.chance(0.2)) p.topicAlias = rng.range(1, 10);
      if (rng.chance(0.2)) p.contentType = "text/plain";
      if (rng.chance(0.2)) p.responseTopic = rng.pick(TOPICS);
      if (rng.chance(0.2)) p.correlationData = rng.bytes(rng.int(16));
      if (rng.chance(0.2)) p.payloadFormatIndicator = rng.int(2);
      break;
    case "subscribe":
      if (rng.chance(0.3)) p.subscriptionIdentifiers = [rng.range(1, 1000)];
      break;
    case "will":
      if (rng.chance(0.3)) p.willDelayInterval = rng.range(0, 5);
      break;
  }
  return p;
}

function payload(rng: Rng): Uint8Array {
  const n = rng.chance(0.05) ? rng.range(256, 4096) : rng.int(64);
  return rng.bytes(n);
}

/** The valid packets of one sequence: a CONNECT, then traffic, then maybe a DISCONNECT. */
function validPackets(rng: Rng, version: ProtocolVersion): Packet[] {
  const v5 = version === 5;
  const out: Packet[] = [];
  const clean = rng.chance(0.6);
  const clientId = clean && rng.chance(0.3) ? "" : `fz-${rng.int(CLIENT_IDS)}`;
  out.push({
    type: "connect",
    protocolName: version === 3 ? "MQIsdp" : "MQTT",
    protocolVersion: version,
    clean,
    keepalive: rng.pick([0, 5, 60, 65535]),
    clientId,
    ...(rng.chance(0.2) ? { username: "user" } : {}),
    ...(rng.chance(0.1) ? { username: "user", password: rng.bytes(rng.int(12)) } : {}),
    ...(rng.chance(0.2)
      ? {
        will: {
          topic: rng.pick(TOPICS),
          payload: payload(rng),
          qos: rng.int(3) as QoS,
          retain: rng.chance(0.2),
          ...(v5 ? { properties: properties(rng, "will") } : {}),
        },
      }
      : {}),
    ...(v5 ? { properties: properties(rng, "connect") } : {}),
  });
  let id = rng.range(1, 65535);
  const nextId = () => (id = id === 65535 ? 1 : id + 1);
  const steps = rng.int(9);
  for (let s = 0; s < steps; s++) {
    const what = rng.int(10);
    if (what < 4) {
      const qos = rng.int(3) as QoS;
      const packetId = qos > 0 ? nextId() : undefined;
      out.push({
        type: "publish",
        topic: rng.pick(TOPICS),
        payload: payload(rng),
        qos,
        retain: rng.chance(0.1),
        dup: qos > 0 && rng.chance(0.1),
        ...(packetId !== undefined ? { packetId } : {}),
        ...(v5 ? { properties: properties(rng, "publish") } : {}),
      });
      if (qos === 2 && rng.chance(0.8)) out.push({ type: "pubrel", packetId: packetId! });
    } else if (what < 6) {
      const n = rng.range(1, 3);
      out.push({
        type: "subscribe",
        packetId: nextId(),
        subscriptions: Array.from({ length: n }, () => ({
          topic: rng.pick(FILTERS),
          qos: rng.int(3) as QoS,
          ...(v5
            ? {
              noLocal: rng.chance(0.3),
              retainAsPublished: rng.chance(0.3),
              retainHandling: rng.int(3) as 0 | 1 | 2,
            }
            : {}),
        })),
        ...(v5 ? { properties: properties(rng, "subscribe") } : {}),
      });
    } else if (what < 7) {
      out.push({ type: "unsubscribe", packetId: nextId(), topics: [rng.pick(FILTERS)] });
    } else if (what < 8) {
      out.push({ type: "pingreq" });
    } else {
      // Acks for deliveries the broker may have made (or not: an unknown id must be harmless).
      const type = rng.pick(["puback", "pubrec", "pubrel", "pubcomp"] as const);
      out.push({ type, packetId: rng.range(1, 20) });
    }
  }
  if (rng.chance(0.5)) {
    out.push(
      v5 && rng.chance(0.5)
        ? { type: "disconnect", reasonCode: rng.pick([0, 4]) }
        : { type: "disconnect" },
    );
  }
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A variable byte integer of `n` bytes (1..5; 5 is always malformed) holding about `value`. */
function vbi(rng: Rng, value: number, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const b = value % 128;
    value = Math.floor(value / 128);
    out.push(i < n - 1 ? b | 0x80 : (rng.chance(0.1) ? b | 0x80 : b));
  }
  return out;
}

/** Offset of the remaining-length field of each packet in `bytes` (laid out from `packets`). */
function headerOffsets(packets: Uint8Array[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const p of packets) {
    out.push(at);
    at += p.length;
  }
  return out;
}

type Mutation = (rng: Rng, bytes: Uint8Array, seq: Sequence, other: () => Uint8Array) => {
  bytes: Uint8Array;
  note: string;
};

const MUTATIONS: [weight: number, Mutation][] = [
  [4, (rng, b) => {
    const out = b.slice();
    const flips = rng.range(1, 4);
    const at: number[] = [];
    for (let i = 0; i < flips && out.length > 0; i++) {
      const pos = rng.int(out.length);
      out[pos] ^= 1 << rng.int(8);
      at.push(pos);
    }
    return { bytes: out, note: `bitflip@${at.join(",")}` };
  }],
  [2, (rng, b) => {
    const out = b.slice();
    const pos = rng.int(Math.max(1, out.length));
    if (out.length > 0) out[pos] = rng.pick([0x00, 0xff, 0x7f, 0x80, rng.int(256)]);
    return { bytes: out, note: `byte@${pos}` };
  }],
  [3, (rng, b) => {
    const cut = rng.int(b.length + 1);
    return { bytes: b.slice(0, cut), note: `truncate@${cut}` };
  }],
  [4, (rng, b, seq) => {
    // Rewrite one packet's remaining length: too short, too long, huge, or non-terminated.
    const offsets = headerOffsets(seq.packets);
    const k = rng.int(offsets.length);
    const start = offsets[k];
    if (start + 1 >= b.length) return { bytes: b, note: "length-skip" };
    let oldLen = 0;
    while (oldLen < 4 && start + 1 + oldLen < b.length && (b[start + 1 + oldLen] & 0x80)) oldLen++;
    oldLen++;
    const value = rng.pick([0, 1, 2, 127, 128, 16_383, 16_384, 2_097_151, 268_435_455]) +
      (rng.chance(0.3) ? rng.int(100) - 50 : 0);
    const n = rng.chance(0.05) ? 5 : rng.range(1, 4);
    const field = Uint8Array.from(vbi(rng, Math.max(0, value), n));
    const out = concat([b.subarray(0, start + 1), field, b.subarray(start + 1 + oldLen)]);
    return { bytes: out, note: `length#${k}=${value}/${n}` };
  }],
  [2, (rng, b) => {
    const from = rng.int(b.length + 1);
    const to = Math.min(b.length, from + rng.range(1, 64));
    const at = rng.int(b.length + 1);
    const piece = b.slice(from, to);
    const copies = rng.chance(0.1) ? rng.range(2, 50) : 1;
    const parts = [b.subarray(0, at)];
    for (let i = 0; i < copies; i++) parts.push(piece);
    parts.push(b.subarray(at));
    return { bytes: concat(parts), note: `dup[${from},${to})x${copies}@${at}` };
  }],
  [2, (rng, b, seq) => {
    // Repeat a whole packet: a second CONNECT, a reused packet id, a repeated PUBREL.
    const k = rng.int(seq.packets.length);
    const offsets = headerOffsets(seq.packets);
    const at = rng.chance(0.5) ? b.length : offsets[rng.int(offsets.length)];
    const out = concat([b.subarray(0, at), seq.packets[k], b.subarray(at)]);
    return { bytes: out, note: `repeat#${k}@${at}` };
  }],
  [2, (rng, b, _seq, other) => {
    // Splice a piece of a sequence of another version (and other lengths) into this one.
    const o = other();
    const from = rng.int(o.length + 1);
    const to = rng.range(from, o.length);
    const at = rng.int(b.length + 1);
    const out = concat([b.subarray(0, at), o.subarray(from, to), b.subarray(at)]);
    return { bytes: out, note: `splice[${from},${to})@${at}` };
  }],
  [1, (rng, b) => {
    const from = rng.int(b.length + 1);
    const to = Math.min(b.length, from + rng.range(1, 16));
    return { bytes: concat([b.subarray(0, from), b.subarray(to)]), note: `delete[${from},${to})` };
  }],
  [1, (rng, b) => {
    const at = rng.int(b.length + 1);
    const junk = rng.bytes(rng.range(1, 32));
    return { bytes: concat([b.subarray(0, at), junk, b.subarray(at)]), note: `junk@${at}` };
  }],
  [2, (rng, b, seq) => {
    // Another type or reserved flags in one fixed header.
    const offsets = headerOffsets(seq.packets);
    const at = offsets[rng.int(offsets.length)];
    if (at >= b.length) return { bytes: b, note: "header-skip" };
    const out = b.slice();
    out[at] = rng.chance(0.5) ? (rng.int(16) << 4) | (out[at] & 0x0f) : (out[at] & 0xf0) |
      rng.int(16);
    return { bytes: out, note: `header@${at}=${out[at].toString(16)}` };
  }],
];
const TOTAL_WEIGHT = MUTATIONS.reduce((n, [w]) => n + w, 0);

function pickMutation(rng: Rng): Mutation {
  let r = rng.int(TOTAL_WEIGHT);
  for (const [w, m] of MUTATIONS) {
    if (r < w) return m;
    r -= w;
  }
  return MUTATIONS[0][1];
}

/** Splits `bytes` into the writes that carry it: whole, random pieces, or some single bytes. */
function chunk(rng: Rng, bytes: Uint8Array): Uint8Array[] {
  const mode = rng.int(10);
  if (mode < 4 || bytes.length < 2) return [bytes];
  const out: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    // A few byte-at-a-time writes at most: they cost a syscall each.
    const n = mode === 9 && out.length < 16 ? 1 : rng.range(1, Math.max(1, bytes.length >> 1));
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

function pickVersion(rng: Rng): ProtocolVersion {
  const r = rng.float();
  return r < 0.3 ? 3 : r < 0.75 ? 4 : 5;
}

/** Sequence `index` of the campaign seeded with `seed`: valid packets, then (usually) mutated. */
export function generate(seed: number, index: number): Sequence {
  const rng = new Rng(sequenceSeed(seed, index));
  const version = pickVersion(rng);
  const packets = validPackets(rng, version).map((p) => encode(p, version));
  const seq: Sequence = { index, version, packets, chunks: [], mutations: [] };
  let bytes = concat(packets);
  if (rng.chance(0.15)) {
    seq.mutations.push("none");
  } else {
    const other = () => {
      const v = pickVersion(rng);
      return concat(validPackets(rng, v).map((p) => encode(p, v)));
    };
    const n = rng.chance(0.7) ? 1 : rng.range(2, 4);
    for (let i = 0; i < n; i++) {
      const r = pickMutation(rng)(rng, bytes, seq, other);
      bytes = r.bytes;
      seq.mutations.push(r.note);
    }
  }
  seq.chunks = chunk(rng, bytes);
  return seq;
}

/** A Rng for the transport-level choices of sequence `index` (WebSocket framing, say). */
export function transportRng(seed: number, index: number): Rng {
  return new Rng(sequenceSeed(seed ^ 0x5bd1e995, index));
}
