/** A subscriber that stops reading must not hold up anyone else. */
import assert from "node:assert/strict";
import { scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";

const COUNT = 20_000;
const SIZE = 1024;
const BATCH = 20;
/**
 * At most this many messages are outstanding between the publisher and the healthy subscriber.
 * Without such a window, a flood faster than mqtt.js can read would overflow the healthy
 * subscriber's own outbound buffer too, and dropping QoS 0 messages there is legitimate (Mosquitto
 * does it as well). 40 KiB stays below the 64 KiB outbound buffer configured below.
 */
const WINDOW = 40;
const DEADLINE_MS = 15_000;

Deno.test("a frozen subscriber does not delay other subscribers", async (t) => {
  // A small outbound buffer, so the broker has to deal with the frozen client early.
  const broker = await startBroker({ args: ["--mqttwk.broker.outbound-buffer-bytes=65536"] });
  try {
    await t.step(
      `${COUNT} QoS 0 messages of 1 KiB reach a healthy subscriber promptly`,
      () =>
        scoped(async (defer) => {
          const topic = `${uid("slow")}/flood`;

          const frozen = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("frozen"),
          });
          defer(frozen.client.close);
          assert.deepEqual(await raw.rawSubscribe(frozen.client, 1, [[topic, 0]]), [0]);
          frozen.client.pause(); // never reads its socket again

          const healthy = await connectMqttJs(broker.url);
          defer(healthy.close);
          await healthy.subscribe(topic, 0);
          let received = 0;
          let outOfOrder = 0;
          let progress: (() => void) | undefined;
          healthy.client.on("message", (_topic, payload) => {
            const seq = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
            if (seq !== received) outOfOrder++;
            received++;
            progress?.();
          });
          /** Resolves once `n` messages arrived; false if the deadline passed first. */
          const receivedAtLeast = (n: number, deadline: number) =>
            new Promise<boolean>((resolve) => {
              const timer = setTimeout(
                () => finish(false),
                Math.max(0, deadline - performance.now()),
              );
              const finish = (ok: boolean) => {
                clearTimeout(timer);
                progress = undefined;
                resolve(ok);
              };
              progress = () => received >= n && finish(true);
              progress();
            });

          const { client: pub } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("flooder"),
          });
          defer(pub.close);
          const payload = new Uint8Array(SIZE);
          /** Connects a new client and pings it; returns the CONNACK latency in ms. */
          const probe = () =>
            scoped(async (deferProbe) => {
              const c0 = performance.now();
              const p = await raw.rawConnect(
                broker.host,
                broker.port,
                { clientId: uid("probe") },
                2_000,
              );
              deferProbe(p.client.close);
              const ms = performance.now() - c0;
              assert.ok(ms < 2_000, `CONNACK took ${ms.toFixed(0)} ms`);
              await p.client.write(raw.pingreq());
              await p.client.expect(T.PINGRESP, 2_000);
              await p.client.write(raw.disconnect());
              return ms;
            });
          let midConnackMs = -1;
          const t0 = performance.now();
          const deadline = t0 + DEADLINE_MS;
          let inTime = true;
          for (let i = 0; i < COUNT && inTime; i += BATCH) {
            inTime = await receivedAtLeast(i - WINDOW + BATCH, deadline);
            if (i === COUNT / 2) midConnackMs = await probe(); // responsive in the middle of it
            const packets = [];
            for (let j = i; j < i + BATCH; j++) {
              new DataView(payload.buffer).setUint32(0, j);
              packets.push(raw.publish({ topic, payload, qos: 0 }));
            }
            await pub.write(raw.concat(...packets));
          }
          const published = performance.now() - t0;

          // After the flood, the broker still accepts and serves new connections quickly.
          const connackMs = await probe();
          inTime = inTime && await receivedAtLeast(COUNT, deadline);
          const total = performance.now() - t0;
          assert.ok(
            inTime,
            `healthy subscriber got ${received}/${COUNT} within ${DEADLINE_MS} ms ` +
              `(publishing took ${published.toFixed(0)} ms)`,
          );
          assert.equal(outOfOrder, 0, "QoS 0 messages from one publisher arrived out of order");
          console.log(
            `published in ${published.toFixed(0)} ms, all received in ${total.toFixed(0)} ms, ` +
              `new CONNACK in ${midConnackMs.toFixed(0)} ms (mid-flood), ${
                connackMs.toFixed(0)
              } ms (after)`,
          );
        }),
    );
  } finally {
    await broker.stop();
  }
});
