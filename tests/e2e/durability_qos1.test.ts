/**
 * Crash durability of QoS 1: every message the broker acknowledged (PUBACK) before a SIGKILL is
 * delivered to an offline persistent subscriber after the restart.
 */
import assert from "node:assert/strict";
import { EXTERNAL, uid } from "../helpers/broker.ts";
import {
  DurableBroker,
  persistentSubscribe,
  receiveAll,
  seededRandom,
  testSeed,
} from "../helpers/durability_broker.ts";
import { reportFigures } from "../helpers/figures.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

const MESSAGES = 2_000;
const ROUNDS = 3;
/** PUBLISHes the publisher keeps unacknowledged at most. */
const WINDOW = 100;

interface Round {
  topic: string;
  acked: Set<number>;
  sent: number;
  killAfterAcks: number;
}

/** Publishes 1..MESSAGES with QoS 1 and SIGKILLs the broker once `killAfterAcks` are acked. */
async function publishUntilKilled(
  b: DurableBroker,
  topic: string,
  killAfterAcks: number,
): Promise<Round> {
  const { client: pub } = await b.connect({ clientId: uid("dur-pub"), cleanSession: true });
  const acked = new Set<number>();
  let sent = 0;
  let killing: Promise<void> | null = null;
  try {
    for (;;) {
      const batch: Uint8Array[] = [];
      while (sent < MESSAGES && sent - acked.size < WINDOW) {
        sent++;
        batch.push(raw.publish({ topic, payload: `seq ${sent}`, qos: 1, packetId: sent }));
      }
      if (batch.length > 0) await pub.write(raw.concat(...batch), true);
      if (!killing && acked.size >= killAfterAcks) killing = b.kill();
      let p: raw.Packet;
      try {
        p = await pub.next(killing ? 2_000 : 10_000);
      } catch (e) {
        if (killing) break; // the connection died with the broker
        throw e;
      }
      if (p.type !== T.PUBACK) throw new Error(`publisher got ${raw.describe(p)}`);
      acked.add(p.packetId!);
    }
  } finally {
    await pub.close();
    await killing;
  }
  return { topic, acked, sent, killAfterAcks };
}

Deno.test({
  name: "every QoS 1 message acknowledged before a SIGKILL reaches the persistent subscriber",
  ignore: EXTERNAL,
  async fn() {
    const seed = testSeed("QoS 1 kill points");
    const rand = seededRandom(seed);
    const b = await DurableBroker.start({
      // The default queue limit (1000) would drop (and still acknowledge) part of the messages.
      args: ["--mqttwk.broker.max-queued-messages=100000"],
    });
    const total = { sent: 0, acknowledged: 0, lost: 0, duplicated: 0 };
    try {
      for (let round = 1; round <= ROUNDS; round++) {
        const topic = `${uid("dur-q1")}/seq`;
        const subId = uid("dur-q1-sub");
        await persistentSubscribe(b, subId, topic, 1);

        const killAfterAcks = 1 + Math.floor(rand() * (MESSAGES - 1));
        const r = await publishUntilKilled(b, topic, killAfterAcks);
        await b.restart();

        const { client: sub, connack } = await b.connect({ clientId: subId, cleanSession: false });
        try {
          assert.equal(
            connack.sessionPresent,
            true,
            `round ${round}: session present after restart`,
          );
          const seqs = new Set<number>();
          let deliveries = 0;
          const got = await receiveAll(sub, (ps) => {
            deliveries += ps.length;
            for (const p of ps.splice(0)) seqs.add(Number(raw.text(p).slice(4)));
            for (const id of r.acked) if (!seqs.has(id)) return false;
            return true;
          }, 3_000);
          deliveries += got.length;
          for (const p of got) seqs.add(Number(raw.text(p).slice(4)));
          const missing = [...r.acked].filter((s) => !seqs.has(s)).sort((x, y) => x - y);
          total.sent += r.sent;
          total.acknowledged += r.acked.size;
          total.lost += missing.length;
          total.duplicated += Math.max(0, deliveries - seqs.size);
          console.log(
            `round ${round}: killed after ${r.killAfterAcks} PUBACKs; ${r.sent} sent, ` +
              `${r.acked.size} acknowledged, ${seqs.size} distinct delivered after restart, ` +
              `${missing.length} acknowledged but missing`,
          );
          assert.ok(r.acked.size >= r.killAfterAcks);
          for (const s of seqs) {
            assert.ok(s >= 1 && s <= r.sent, `round ${round}: delivered unknown message ${s}`);
          }
          assert.deepEqual(
            missing.slice(0, 20),
            [],
            `round ${round} (seed ${seed}): ${missing.length} PUBACKed messages not delivered ` +
              `after the restart, first: ${missing.slice(0, 20)}\n${b.tail()}`,
          );
          await sub.write(raw.disconnect(), true);
        } finally {
          await sub.close();
        }
      }
      reportFigures("QoS 1 across SIGKILL", { ...total, ...b.faultFigures() });
    } finally {
      await b.dispose();
    }
  },
});
