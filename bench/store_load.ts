/**
 * Start-up cost of the SQLite store: fills a temporary store with retained messages and
 * persistent sessions holding queued messages, then times reopen + loadSessions + loadRetained.
 *
 *   deno run -A bench/store_load.ts [retained=100000] [sessions=10000] [queuedPerSession=10]
 */
import { SqliteStore } from "../src/store/sqlite.ts";
import type { StoredMessage } from "../src/broker/model.ts";

const RETAINED = Number(Deno.args[0] ?? 100_000);
const SESSIONS = Number(Deno.args[1] ?? 10_000);
const QUEUED = Number(Deno.args[2] ?? 10);
const quiet = { info() {}, warn: console.warn, error: console.error };

const dir = await Deno.makeTempDir({ prefix: "mqttwk-load-" });
const ms = (t0: number) => `${(performance.now() - t0).toFixed(0)} ms`;

function msg(id: string, topic: string, i: number): StoredMessage {
  const m: StoredMessage = {
    id,
    topic,
    payload: new Uint8Array(200).fill(i & 0xff),
    qos: 1,
    retain: false,
    createdAt: 1_700_000_000_000 + i,
  };
  // Every tenth message carries MQTT 5 properties, the rest none.
  if (i % 10 === 0) {
    m.properties = {
      userProperties: [["k", String(i)]],
      correlationData: new Uint8Array([i & 0xff]),
    };
  }
  return m;
}

try {
  let t0 = performance.now();
  const fill = new SqliteStore({
    dir,
    durability: "interval",
    commitIntervalMs: 50,
    maxBatchOps: 20_000,
    logger: quiet,
  });
  await fill.open();
  for (let i = 0; i < RETAINED; i++) {
    const topic = `sensors/${i % 1000}/${i}`;
    fill.setRetained(topic, { ...msg(`r${i}`, topic, i), retain: true });
  }
  for (let c = 0; c < SESSIONS; c++) {
    const clientId = `client-${c}`;
    fill.saveSession({
      clientId,
      expiryInterval: 86400,
      disconnectedAt: Date.now(),
      protocolVersion: 5,
    });
    fill.addSubscription(clientId, { filter: `cmd/${c}/#`, qos: 1 });
    fill.addSubscription(clientId, { filter: "broadcast/+", qos: 2, subscriptionId: 7 });
    for (let q = 1; q <= QUEUED; q++) {
      fill.putOutbound(clientId, {
        seq: q,
        message: msg(`m${c}-${q}`, `cmd/${c}/x`, q),
        qos: 1,
        retain: false,
        state: "queued",
      });
    }
  }
  await fill.close();
  const size = (await Deno.stat(`${dir}/mqttwk.db`)).size;
  console.log(
    `filled ${RETAINED} retained, ${SESSIONS} sessions x ${QUEUED} queued in ${ms(t0)}; ` +
      `file ${(size / 1024 / 1024).toFixed(1)} MiB`,
  );

  for (const worker of [true, false]) {
    t0 = performance.now();
    const store = new SqliteStore({
      dir,
      durability: "sync",
      commitIntervalMs: 10,
      worker,
      logger: quiet,
    });
    let t = performance.now();
    await store.open();
    const open = ms(t);
    t = performance.now();
    const sessions = await store.loadSessions();
    const loadS = ms(t);
    t = performance.now();
    const retained = await store.loadRetained();
    const loadR = ms(t);
    const queued = sessions.reduce((n, s) => n + s.outbound.length, 0);
    await store.close();
    console.log(
      `${worker ? "worker   " : "in-thread"}: open ${open}, loadSessions ${loadS} ` +
        `(${sessions.length} sessions, ${queued} queued), loadRetained ${loadR} ` +
        `(${retained.length}); total ${ms(t0)}`,
    );
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
