/**
 * SCRAM-SHA-256 enhanced authentication in the deployments the broker supports: over TLS and
 * over WebSocket / secure WebSocket (mqtt.js 5.0 as the client), and on two cluster nodes that
 * share one SCRAM file, where a user authenticates on either node and their messages cross.
 * [MQTT-4.12.0-2] [MQTT-4.12.0-5]
 */
import assert from "node:assert/strict";
import type { IClientOptions } from "mqtt";
import { makeVerifier } from "../../src/auth/scram.ts";
import { formatVerifier } from "../../src/auth/scram_file.ts";
import { writeTemp } from "../auth/e2e_helpers.ts";
import { spawnNode } from "../cluster/nodes.ts";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { METHOD } from "../helpers/scram_client.ts";
import { scramConnect } from "../helpers/scram_mqttjs.ts";
import { waitFor } from "../helpers/wait.ts";
import { listenerPort, makeCerts } from "../transport/helpers.ts";

/** A SCRAM file with user "user", password "pencil"; returns its path. */
async function scramFile(defer: (f: () => unknown) => void): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-scram-dep-" });
  defer(() => Deno.remove(dir, { recursive: true }));
  const v = await makeVerifier("pencil", 4096);
  return await writeTemp(dir, "scram", `user:${formatVerifier(v)}\n`);
}

const scramArgs = (file: string) => [
  "--mqttwk.broker.mqtt-password-must=true",
  `--mqttwk.broker.auth.scram-file=${file}`,
  "--mqttwk.broker.auth.failure-delay-max=0.1",
];

/**
 * Authenticates as "user" at `url`, proves the server, and sends itself a message; a wrong
 * password at the same URL gets CONNACK 0x87.
 */
async function scramRoundTrip(url: string, opts: IClientOptions = {}): Promise<void> {
  const good = scramConnect(url, "user", "pencil", opts);
  try {
    const connack = await good.connack;
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.properties?.authenticationMethod, METHOD);
    assert.ok(good.serverProven(connack), `the server proves itself over ${url}`);
    const t = uid("scram");
    await good.client.subscribeAsync(t, { qos: 1 });
    const got = new Promise<string>((r) => good.client.once("message", (_t, p) => r(p.toString())));
    await good.client.publishAsync(t, "hello", { qos: 1 });
    assert.equal(await got, "hello");
  } finally {
    await good.client.endAsync();
  }
  const bad = scramConnect(url, "user", "wrong", opts);
  await assert.rejects(bad.connack, (e: Error & { code?: number }) => e.code === 0x87);
  bad.client.end(true);
}

Deno.test({
  name: "SCRAM-SHA-256 over TLS, WebSocket and secure WebSocket with mqtt.js 5.0 [MQTT-4.12.0-2]",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const file = await scramFile(defer);
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: [
          ...scramArgs(file),
          `--mqttwk.broker.ssl-cert-file=${certs.serverCert}`,
          `--mqttwk.broker.ssl-key-file=${certs.serverKey}`,
          "--mqttwk.broker.ssl-port=0",
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
          "--mqttwk.broker.wss-port=0",
        ],
      });
      defer(() => broker.stop());
      await broker.waitForLog(/SCRAM-SHA-256 for 1 user/);
      const tls = { ca: await Deno.readTextFile(certs.ca), rejectUnauthorized: true };
      await scramRoundTrip(`mqtts://localhost:${await listenerPort(broker, "tls")}`, tls);
      await scramRoundTrip(`ws://127.0.0.1:${await listenerPort(broker, "ws")}/mqtt`);
      await scramRoundTrip(`wss://localhost:${await listenerPort(broker, "wss")}/mqtt`, tls);
      await broker.waitForLog(/via tls \(v5\.0/);
      await broker.waitForLog(/via ws \(v5\.0/);
      await broker.waitForLog(/via wss \(v5\.0/);
    }),
});

Deno.test({
  name:
    "SCRAM-SHA-256 on two cluster nodes sharing one SCRAM file: a user authenticates on either node and their messages cross [MQTT-4.12.0-2]",
  ignore: REDIS_IGNORE || EXTERNAL,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const file = await scramFile(defer);
      const r = await startRedis();
      defer(() => r.kill());
      const args = [`--redis.port=${r.port}`];
      const [n1, n2] = await Promise.all([
        spawnNode("n1", args, scramArgs(file)),
        spawnNode("n2", args, scramArgs(file)),
      ]);
      defer(() => n1.kill());
      defer(() => n2.kill());
      await scramRoundTrip(n1.url);
      await scramRoundTrip(n2.url);
      // One user on both nodes at once (two client ids): a message crosses from n2 to n1.
      const a = scramConnect(n1.url, "user", "pencil");
      defer(() => a.client.endAsync());
      const b = scramConnect(n2.url, "user", "pencil");
      defer(() => b.client.endAsync());
      await Promise.all([a.connack, b.connack]);
      const t = uid("scramx");
      const got: string[] = [];
      a.client.on("message", (_t, p) => got.push(p.toString()));
      await a.client.subscribeAsync(t, { qos: 1 });
      // Until n2 has heard of the route, n2 drops what it gets for t: probe until one crosses.
      await waitFor(async () => {
        await b.client.publishAsync(t, "probe", { qos: 0 });
        return got.includes("probe");
      }, { what: "the route to reach n2", interval: 50 });
      await b.client.publishAsync(t, "across", { qos: 1 });
      await waitFor(() => got.includes("across"), { what: "the message from n2 on n1" });
    }),
});
