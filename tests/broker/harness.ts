/**
 * Shared helpers for the in-process core tests: a broker over a MemoryStore (or a given store),
 * packet builders and waits. Everything goes through the core's public surface (BrokerDeps,
 * handleConnection, stats, close) and the wire.
 */
import assert from "node:assert/strict";
import { Broker, type BrokerDeps } from "../../src/broker/broker.ts";
import { type BrokerOptions, defaultBrokerOptions } from "../../src/broker/options.ts";
import type { Packet, PublishPacket, QoS } from "../../src/codec/packets.ts";
import { silentLogger } from "../../src/log.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { MemoryClient, type MemoryClientOptions } from "./memory_pipe.ts";

export { MemoryClient };

const enc = new TextEncoder();
const dec = new TextDecoder();

export type BrokerSetup = Partial<Omit<BrokerDeps, "options">> & {
  options?: Partial<BrokerOptions>;
};

export function makeBroker(setup: BrokerSetup = {}): Broker {
  const { options, ...deps } = setup;
  return new Broker({
    store: new MemoryStore(),
    log: silentLogger,
    ...deps,
    options: { ...defaultBrokerOptions, ...options },
  });
}

/** Runs `fn` against a started broker, closing it (and its store) afterwards. */
export async function withBroker(
  fn: (b: Broker) => Promise<void>,
  setup: BrokerSetup = {},
): Promise<void> {
  const broker = makeBroker(setup);
  await broker.start();
  try {
    await fn(broker);
  } finally {
    await broker.close();
  }
}

/** A connected client (CONNACK 0 asserted). */
export async function connected(
  b: Broker,
  clientId: string,
  opts: { clean?: boolean; version?: 3 | 4 | 5; extra?: Partial<Packet> } & MemoryClientOptions =
    {},
): Promise<MemoryClient> {
  const c = new MemoryClient(b, opts.version ?? 4, opts);
  const ack = await c.connect(clientId, opts.clean ?? true, opts.extra ?? {});
  assert.equal(ack.reasonCode, 0, `CONNACK for ${clientId}`);
  return c;
}

export function publish(
  topic: string,
  payload: string | Uint8Array,
  qos: QoS = 0,
  extra: Partial<PublishPacket> = {},
): PublishPacket {
  return {
    type: "publish",
    topic,
    payload: typeof payload === "string" ? enc.encode(payload) : payload,
    qos,
    retain: false,
    dup: false,
    packetId: qos > 0 ? 1 : undefined,
    ...extra,
  };
}

/** Subscribes and returns the SUBACK return codes. */
export async function subscribe(
  c: MemoryClient,
  filters: [string, QoS][],
  packetId = 1,
): Promise<number[]> {
  await c.send({
    type: "subscribe",
    packetId,
    subscriptions: filters.map(([topic, qos]) => ({ topic, qos })),
  });
  const ack = await c.next("suback");
  assert.equal(ack.packetId, packetId, "SUBACK carries the SUBSCRIBE's packet id");
  return ack.reasonCodes;
}

export async function unsubscribe(c: MemoryClient, topics: string[], packetId = 2) {
  await c.send({ type: "unsubscribe", packetId, topics });
  const ack = await c.next("unsuback");
  assert.equal(ack.packetId, packetId, "UNSUBACK carries the UNSUBSCRIBE's packet id");
}

/** Publishes at QoS 0 or with the full QoS 1/2 handshake from the publisher's side. */
export async function publishAcked(
  c: MemoryClient,
  topic: string,
  payload: string | Uint8Array,
  qos: QoS = 0,
  extra: Partial<PublishPacket> = {},
): Promise<void> {
  const p = publish(topic, payload, qos, extra);
  await c.send(p);
  if (qos === 1) assert.equal((await c.next("puback")).packetId, p.packetId);
  if (qos === 2) {
    assert.equal((await c.next("pubrec")).packetId, p.packetId);
    await c.send({ type: "pubrel", packetId: p.packetId! });
    assert.equal((await c.next("pubcomp")).packetId, p.packetId);
  }
}

export function text(p: { payload: Uint8Array }): string {
  return dec.decode(p.payload);
}

/**
 * Waits a short window in which something must NOT happen. Only used where the absence of a
 * packet is what is tested: an event that never comes cannot be awaited.
 */
export function quietWindow(ms = 100): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits (polling) until `cond` holds. */
export async function waitFor(cond: () => boolean, timeoutMs = 3000, what = "condition") {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Asserts that `c` received no (further) packet of `type` during a quiet window. */
export async function assertNone(c: MemoryClient, type: Packet["type"], ms = 100) {
  await quietWindow(ms);
  assert.deepEqual(c.pending(type), [], `no ${type} expected`);
}

/** Closes the connection from the client's side without DISCONNECT and waits for the close. */
export async function drop(c: MemoryClient): Promise<void> {
  c.close();
  await c.waitClosed();
}

/** Sends DISCONNECT and waits for the broker to close the connection. */
export async function disconnect(c: MemoryClient): Promise<void> {
  await c.send({ type: "disconnect" });
  await c.waitClosed();
}

/** A temporary directory for a SqliteStore, removed after `fn`. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-core-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A SqliteStore in `dir`, committing synchronously, on the calling thread. */
export function sqliteStore(dir: string): SqliteStore {
  return new SqliteStore({
    dir,
    durability: "sync",
    commitIntervalMs: 5,
    worker: false,
    logger: { info: () => {}, warn: () => {}, error: (m) => console.error(m) },
  });
}

/**
 * Runs `fn` with Date.now moved forward only by `advance(ms)` (on top of real time), so timers
 * the broker checks against the clock (token buckets, expiry) fire exactly when a test says.
 */
export async function withClock(
  fn: (advance: (ms: number) => void) => Promise<void>,
): Promise<void> {
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;
  try {
    await fn((ms) => offset += ms);
  } finally {
    Date.now = realNow;
  }
}
