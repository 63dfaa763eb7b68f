/**
 * SCRAM-SHA-256 enhanced authentication end to end: the broker process over real TCP, mqtt.js
 * 5.16 as the client (its `properties.authenticationMethod` and `handleAuth` hook; the SCRAM
 * client side is tests/helpers/scram_client.ts, on node:crypto), mosquitto_pub -V mqttv5, and
 * `deno task scram-user` plus SIGHUP to add a user to a running broker.
 */
import { ignoreUnless } from "../helpers/cli.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import type { IConnackPacket, MqttClient } from "mqtt";
import { makeVerifier } from "../../src/auth/scram.ts";
import { formatVerifier } from "../../src/auth/scram_file.ts";
import { brokerPid, runMosquittoPub, writeTemp } from "../auth/e2e_helpers.ts";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { METHOD, ScramClient } from "../helpers/scram_client.ts";

function hasCommand(cmd: string): boolean {
  try {
    new Deno.Command(cmd, { args: ["--help"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}
const MOSQUITTO = hasCommand("mosquitto_pub");

type AuthPacket = Parameters<MqttClient["handleAuth"]>[0];

/** mqtt.js with SCRAM: AUTH 0x18 answered from handleAuth; the server's proof checked. */
class ScramMqttJs {
  readonly client: MqttClient;
  readonly connack: Promise<IConnackPacket>;
  /** Resolves at each AUTH 0x00 (a re-authentication succeeded), with the proof's verdict. */
  #reauthDone: ((ok: boolean) => void) | null = null;
  #scram: ScramClient;

  constructor(url: string, user: string, password: string) {
    this.#scram = new ScramClient(user, password);
    this.client = mqtt.connect(url, {
      protocolVersion: 5,
      clientId: uid("scram"),
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      manualConnect: true,
      properties: { authenticationMethod: METHOD, authenticationData: this.#scram.first() },
    });
    this.client.handleAuth = (packet: AuthPacket, cb) => {
      const data = packet.properties?.authenticationData;
      if (packet.reasonCode === 0) {
        // The end of a re-authentication: AUTH 0x00 with the server-final-message.
        this.#reauthDone?.(this.#scram.verifyServer(data));
        return cb();
      }
      cb(undefined, {
        cmd: "auth",
        reasonCode: 0x18,
        properties: { authenticationMethod: METHOD, authenticationData: this.#scram.final(data!) },
      });
    };
    this.connack = new Promise((resolve, reject) => {
      this.client.once("connect", resolve);
      this.client.once("error", reject);
      this.client.once("close", () => reject(new Error("closed before CONNACK")));
    });
    this.client.connect();
  }

  /** Proves the CONNACK's server-final-message. */
  serverProven(connack: IConnackPacket): boolean {
    return this.#scram.verifyServer(connack.properties?.authenticationData);
  }

  /** Re-authenticates (AUTH 0x19; mqtt.js has no public call for it, so its _sendPacket). */
  reauthenticate(user: string, password: string): Promise<boolean> {
    this.#scram = new ScramClient(user, password);
    const done = new Promise<boolean>((resolve) => (this.#reauthDone = resolve));
    // deno-lint-ignore no-explicit-any
    (this.client as any)._sendPacket({
      cmd: "auth",
      reasonCode: 0x19,
      properties: { authenticationMethod: METHOD, authenticationData: this.#scram.first() },
    });
    return done;
  }
}

Deno.test({
  name:
    "mqtt.js 5.0 authenticates by SCRAM-SHA-256 without sending its password, re-authenticates, " +
    "and a wrong password gets 0x87 [MQTT-4.12.0-2] [MQTT-4.12.0-5] [MQTT-4.12.1-1]",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const dir = await Deno.makeTempDir({ prefix: "mqttwk-scram-e2e-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const v = await makeVerifier("pencil", 4096);
      const file = await writeTemp(dir, "scram", `user:${formatVerifier(v)}\n`);
      const broker = await startBroker({
        args: [
          "--mqttwk.broker.mqtt-password-must=true",
          `--mqttwk.broker.auth.scram-file=${file}`,
          "--mqttwk.broker.auth.failure-delay-max=0.1",
        ],
      });
      defer(() => broker.stop());
      await broker.waitForLog(/SCRAM-SHA-256 for 1 user/);

      const good = new ScramMqttJs(broker.url, "user", "pencil");
      defer(() => good.client.endAsync());
      const connack = await good.connack;
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.authenticationMethod, METHOD);
      assert.ok(good.serverProven(connack), "the CONNACK proves the server holds the verifier");

      // It works as any client: a message to itself.
      await good.client.subscribeAsync("scram/t", { qos: 1 });
      const got = new Promise<string>((r) =>
        good.client.once("message", (_t, p) => r(p.toString()))
      );
      await good.client.publishAsync("scram/t", "hello", { qos: 1 });
      assert.equal(await got, "hello");

      assert.equal(
        await good.reauthenticate("user", "pencil"),
        true,
        "AUTH 0x00 with a valid proof",
      );
      await good.client.publishAsync("scram/t", "still", { qos: 1 });

      const bad = new ScramMqttJs(broker.url, "user", "wrong");
      defer(() => bad.client.endAsync(true));
      await assert.rejects(bad.connack, (e: { code?: number }) => e.code === 0x87);
      // What the broker saw never contained the password: it only logs the refusal.
      assert.ok(!broker.logs().includes("pencil"));
      await broker.waitForLog(/refused connection .*SCRAM authentication failed \(CONNACK 0x87\)/);
    }),
});

Deno.test({
  name: "mosquitto_pub -V mqttv5 without SCRAM cannot get in as a SCRAM-only user",
  ignore: EXTERNAL || ignoreUnless(MOSQUITTO, "mosquitto_pub"),
  fn: () =>
    scoped(async (defer) => {
      const dir = await Deno.makeTempDir({ prefix: "mqttwk-scram-e2e-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const v = await makeVerifier("pencil", 4096);
      const file = await writeTemp(dir, "scram", `user:${formatVerifier(v)}\n`);
      const broker = await startBroker({
        args: [
          "--mqttwk.broker.mqtt-password-must=true",
          `--mqttwk.broker.auth.scram-file=${file}`,
          "--mqttwk.broker.auth.failure-delay-max=0.1",
        ],
      });
      defer(() => broker.stop());
      const common = ["-V", "mqttv5", "-h", "127.0.0.1", "-p", String(broker.port), "-t", "x"];
      for (const creds of [[], ["-u", "user"], ["-u", "user", "-P", "pencil"]]) {
        const r = await runMosquittoPub([...common, ...creds, "-m", "m"]);
        assert.notEqual(r.code, 0, `mosquitto_pub ${creds.join(" ")} got in`);
        assert.match(r.stderr, /not authori[sz]ed|bad user name or password/i, r.stderr);
      }
      await broker.waitForLog(/refused connection/);
    }),
});

Deno.test({
  name: "deno task scram-user adds a user to a running broker after SIGHUP",
  ignore: EXTERNAL,
  fn: () =>
    scoped(async (defer) => {
      const dir = await Deno.makeTempDir({ prefix: "mqttwk-scram-e2e-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const file = await writeTemp(dir, "scram", "# SCRAM users\n");
      const broker = await startBroker({
        args: [
          "--mqttwk.broker.mqtt-password-must=true",
          `--mqttwk.broker.auth.scram-file=${file}`,
        ],
      });
      defer(() => broker.stop());
      const before = new ScramMqttJs(broker.url, "carol", "s3cret");
      defer(() => before.client.endAsync(true));
      await assert.rejects(before.connack, (e: { code?: number }) => e.code === 0x87);

      const child = new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "scram-user", file, "carol"],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(Buffer.from("s3cret\n"));
      await w.close();
      const out = await child.output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      assert.ok(!(await Deno.readTextFile(file)).includes("s3cret"));

      Deno.kill(brokerPid(dir), "SIGHUP");
      await broker.waitForLog(/reloaded .*scram/);
      const after = new ScramMqttJs(broker.url, "carol", "s3cret");
      defer(() => after.client.endAsync());
      assert.equal((await after.connack).reasonCode, 0);
    }),
});
