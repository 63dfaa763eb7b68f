/**
 * What a queued message really costs in the broker's heap, against what the queue total counts
 * it as (queuedCost: payload + topic + properties + QUEUE_ENTRY_OVERHEAD). A broker subprocess
 * (memory persistence, as the fuzz runs it) gets offline persistent sessions subscribed to one
 * topic each or all to one topic, then queued messages with the fuzz's payload sizes; a heap
 * census (after a full GC) before and after gives the real bytes per queued message.
 *
 *   deno run -A tests/hardening/queue_cost.ts [--sessions 200] [--messages 500]
 */
import { parseArgs } from "node:util";
import { QUEUE_ENTRY_OVERHEAD } from "../../src/broker/session.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { freePort, mib, startBrokerProcess } from "./broker_process.ts";
import { heapCensus } from "./heap_probe.ts";

const { values: a } = parseArgs({
  args: Deno.args,
  options: {
    sessions: { type: "string", default: "200" },
    messages: { type: "string", default: "500" },
  },
});
const SESSIONS = Number(a.sessions);
const MESSAGES = Number(a.messages);

/** The fuzz's payload sizes: mostly under 64 bytes, one in twenty 256..4096. */
function payload(i: number): Uint8Array {
  const n = i % 20 === 0 ? 256 + (i * 97) % 3841 : (i * 31) % 64;
  return new Uint8Array(n).fill(0x61);
}

for (const shape of ["fan-out", "distinct"] as const) {
  const inspectPort = freePort();
  const broker = await startBrokerProcess({
    args: [
      "--mqttwk.broker.log-level=error",
      "--mqttwk.broker.max-queued-bytes-total=0",
      "--mqttwk.broker.sys-interval=0",
    ],
    denoFlags: [`--inspect=127.0.0.1:${inspectPort}`],
  });
  try {
    const url = `mqtt://127.0.0.1:${broker.port}`;
    for (let s = 0; s < SESSIONS; s++) {
      const c = await connectMqttJs(url, { clientId: `qc-${s}`, clean: false });
      await c.subscribe(shape === "fan-out" ? "qc/all" : `qc/own/${s}`, 1);
      await c.close();
    }
    const before = await heapCensus(inspectPort);
    const rss0 = broker.rss();
    const pub = await connectMqttJs(url, { clientId: "qc-pub" });
    let counted = 0;
    let entries = 0;
    for (let i = 0; i < MESSAGES; i++) {
      const p = payload(i);
      if (shape === "fan-out") {
        await pub.publish("qc/all", p, { qos: 1 });
        counted += SESSIONS * (p.byteLength + "qc/all".length + QUEUE_ENTRY_OVERHEAD);
        entries += SESSIONS;
      } else {
        for (let s = 0; s < SESSIONS; s++) {
          const topic = `qc/own/${s}`;
          await pub.publish(topic, p, { qos: 1 });
          counted += p.byteLength + topic.length + QUEUE_ENTRY_OVERHEAD;
          entries++;
        }
      }
    }
    await pub.close();
    const after = await heapCensus(inspectPort);
    const real = after.totalBytes - before.totalBytes;
    console.log(
      `${shape}: ${entries} queued messages (${SESSIONS} sessions); heap +${mib(real)} MiB ` +
        `= ${Math.round(real / entries)} B each; counted ${Math.round(counted / entries)} B each ` +
        `(real/counted ${(real / counted).toFixed(2)}); RSS ${mib(rss0)} -> ${
          mib(broker.rss())
        } MiB`,
    );
  } finally {
    await broker.stop();
  }
}
