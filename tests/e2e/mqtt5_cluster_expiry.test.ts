/**
 * MQTT 5.0 Message Expiry across the death of a node (issue 13, cluster case): messages queued
 * for an offline persistent 5.0 session on node n1, which is then killed with SIGKILL. The node
 * that adopts n1's sessions (docs/cluster.md), or the node the subscriber reconnects to, delivers
 * the long-lived messages with every property and the remaining interval, and never the ones whose
 * expiry passed meanwhile (MQTT-3.3.2-5, MQTT-3.3.2-6).
 *
 * The nodes are separate processes, so their clocks cannot be moved: the short expiry is a real
 * 2 s, and the test waits (polling the clock) until it has passed.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import type { IPublishPacket } from "mqtt";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, type RedisServer, startRedis } from "../helpers/redis.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";
import { awaitRoute, type NodeProcess, spawnNode } from "../cluster/nodes.ts";

const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

const SHORT = 2; // s: passes while n1 dies and is taken over
const LONG = 3600; // s: never passes during the test

/** One published message and the window in which the broker stamped its arrival. */
interface Sent {
  payload: string;
  expiry: number;
  sentAt: number;
  ackedAt: number;
}

function longProps(n: number) {
  return {
    messageExpiryInterval: LONG,
    payloadFormatIndicator: true,
    contentType: "application/json",
    responseTopic: `reply/${n}`,
    correlationData: Buffer.from([0xc0, 0xff, 0, 0xee, n]),
    // A repeated name: mqtt.js folds it into an array in order (MQTT-3.3.2-17 keeps the order).
    userProperties: { trace: [`t${n}`, "again"], hop: "n2" },
  };
}

/** Number of entries (queued or in flight) of `clientId`'s session in Redis. */
async function storedEntries(redis: RedisServer, clientId: string): Promise<number> {
  return Number((await redis.cli("HLEN", `mqttwk:s:{${clientId}}:out`)).trim());
}

/** Which survivor logged the takeover of n1. */
async function adopterOf(survivors: NodeProcess[]): Promise<NodeProcess> {
  return await waitFor(
    () => survivors.find((n) => /took over node n1: 1 session/.test(n.logs())),
    {
      what: "a survivor to take over n1's session",
      timeout: 20_000,
      interval: 50,
      detail: () => survivors.map((n) => `--- ${n.id}:\n${n.logs()}`).join("\n"),
    },
  );
}

for (const where of ["the adopting node", "another node"] as const) {
  Deno.test({
    ...opts,
    name:
      `a 5.0 session queued on a node killed with SIGKILL resumes on ${where}: long-lived messages arrive with every property and a smaller remaining expiry, expired ones never [MQTT-3.3.2-5] [MQTT-3.3.2-6] [MQTT-3.3.2-15] [MQTT-3.3.2-17] [MQTT-3.3.2-20]`,
    fn: () =>
      scoped(async (defer) => {
        const r = await startRedis();
        defer(() => r.kill());
        const args = [`--redis.port=${r.port}`];
        const nodes = await Promise.all(["n1", "n2", "n3"].map((id) => spawnNode(id, args)));
        for (const n of nodes) defer(() => n.kill());
        const [n1, n2, n3] = nodes;
        const t = uid("m5exp");
        const clientId = `${t}-sub`;
        const v5 = { protocolVersion: 5 as const };
        const persistent = {
          ...v5,
          clientId,
          clean: false,
          properties: { sessionExpiryInterval: 3600 },
        };

        // The session lives on n1 with a subscription the other nodes route to, then goes offline.
        const sub = await connectMqttJs(n1.url, persistent);
        await sub.subscribe(`${t}/#`, 1);
        const pub = await connectMqttJs(n2.url, v5);
        defer(pub.close);
        await awaitRoute(pub, sub, `${t}/probe`);
        await sub.close();
        await n1.waitForLog(new RegExp(`client ${clientId} disconnected`), 5_000);

        // Long and short interleaved: the short ones sit between long ones in the session's queue.
        const sent: Sent[] = [];
        for (const [i, expiry] of [LONG, SHORT, LONG, SHORT, LONG].entries()) {
          const payload = `${expiry === LONG ? "long" : "short"}-${i}`;
          const properties = expiry === LONG ? longProps(i) : { messageExpiryInterval: SHORT };
          const sentAt = Date.now();
          await pub.client.publishAsync(`${t}/m`, payload, { qos: 1, properties });
          sent.push({ payload, expiry, sentAt, ackedAt: Date.now() });
        }
        // n1 took them from its stream and wrote them to the session's queue in Redis: they are
        // queued on n1, not merely forwarded towards it, when it dies.
        let seen = "";
        await waitFor(async () => {
          const queued = await storedEntries(r, clientId);
          const stream = Number((await r.cli("XLEN", "mqttwk:stream:{n1}")).trim());
          seen = `${queued} queued, ${stream} in n1's stream`;
          return queued === sent.length && stream === 0;
        }, { what: "the messages queued in n1's session", interval: 20, detail: () => seen });

        await n1.kill();
        const adopter = await adopterOf([n2, n3]);
        const target = where === "the adopting node" ? adopter : adopter === n2 ? n3 : n2;
        // The short expiry is real time in other processes: wait until it has passed for every
        // message (the broker stamped each one before its PUBACK).
        const lastAck = Math.max(...sent.map((s) => s.ackedAt));
        await waitFor(() => Date.now() > lastAck + SHORT * 1000, {
          what: "the short expiry to pass",
          timeout: SHORT * 1000 + 5_000,
          interval: 20,
        });

        // The handler is attached before CONNECT: queued messages follow the CONNACK at once.
        const got: { packet: IPublishPacket; at: number }[] = [];
        const reconnectAt = Date.now();
        const back = mqtt.connect(target.url, {
          ...persistent,
          reconnectPeriod: 0,
          connectTimeout: 30_000,
        });
        back.on("message", (_t, _p, packet) => got.push({ packet, at: Date.now() }));
        back.on("error", () => {});
        defer(() => back.endAsync());
        const longs = sent.filter((s) => s.expiry === LONG);
        const onM = () => got.filter((g) => g.packet.topic === `${t}/m`);
        await waitFor(() => onM().length >= longs.length, {
          what: `the ${longs.length} long-lived messages on ${target.id}`,
          timeout: 20_000,
          interval: 20,
          detail: () =>
            `got ${onM().map((g) => g.packet.payload.toString())}\n` +
            nodes.map((n) => `--- ${n.id}:\n${n.logs()}`).join("\n"),
        });
        // Queue order is kept, so the expired ones, queued before the last long one, would have
        // come by now: no grace period is needed to see that they did not.
        const delivered = onM();
        assert.deepEqual(
          delivered.map((g) => g.packet.payload.toString()),
          longs.map((s) => s.payload),
          "every long-lived message once, in order, and no expired one",
        );
        for (const [k, { packet, at }] of delivered.entries()) {
          const s = longs[k];
          const n = Number(s.payload.split("-")[1]);
          const p = packet.properties!;
          assert.ok(p, `${s.payload} has properties`);
          // MQTT-3.3.2-6: the interval received minus the time it waited, rounded up by the
          // broker. It waited at least from its PUBACK to the reconnect, at most from its sending
          // to its arrival.
          const max = Math.ceil((s.ackedAt + LONG * 1000 - reconnectAt) / 1000);
          const min = Math.ceil((s.sentAt + LONG * 1000 - at) / 1000);
          const left = p.messageExpiryInterval!;
          assert.ok(
            left < LONG && left <= max && left >= min,
            `${s.payload}: remaining expiry ${left}, expected ${min}..${max} (< ${LONG})`,
          );
          const want = longProps(n);
          assert.equal(p.payloadFormatIndicator, true);
          assert.equal(p.contentType, want.contentType);
          assert.equal(p.responseTopic, want.responseTopic);
          assert.deepEqual(Buffer.from(p.correlationData!), want.correlationData);
          assert.deepEqual({ ...p.userProperties }, want.userProperties);
          assert.equal(p.subscriptionIdentifier, undefined);
          assert.equal(packet.qos, 1);
        }
        // The expired ones left the stored queue too, not only the delivery: once the long ones
        // are acknowledged the session holds nothing in Redis.
        await waitFor(async () => (seen = String(await storedEntries(r, clientId))) === "0", {
          what: "the session's stored queue to empty",
          interval: 20,
          detail: () => `${seen} entries left`,
        });
      }),
  });
}
