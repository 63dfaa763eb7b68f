/**
 * Authentication over real TCP: the original MqttWk's RSA demo credentials, a password file and
 * an HTTP hook chained in one broker, checked with mosquitto_pub, mqtt.js and raw packets.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, sleep, startBroker, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";
import { PacketType as T } from "../helpers/raw.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import { DEMO_PASSWORD, DEMO_USER } from "../auth/fixtures.ts";
import { connackCode, runMosquittoPub, writeTemp } from "../auth/e2e_helpers.ts";

/** Right shape for the demo key (one 64-byte block in hex), wrong value. */
const WRONG_RSA = "0".repeat(127) + "1";

Deno.test({
  name: "clients authenticate with RSA passwords, a password file or an HTTP hook",
  ignore: EXTERNAL,
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-auth-e2e-" });
    const alice = await hashPassword("wonderland", 1000);
    const pwFile = await writeTemp(dir, "passwords", `alice:${formatHash(alice)}\n`);

    const bodies: Record<string, unknown>[] = [];
    const hook = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = await req.json();
      bodies.push(body);
      switch (body.username) {
        case "hook-ok":
          return Response.json({ result: "allow" });
        case "hook-no":
          return Response.json({ result: "deny" });
        case "hook-forbidden":
          return new Response(null, { status: 403 });
        case "hook-slow":
          // Fixed on purpose: an answer later than the broker's 0.5 s http-timeout.
          await sleep(1_500);
          return Response.json({ result: "allow" });
        default:
          return Response.json({ result: "ignore" });
      }
    });
    let hookUp = true;

    const broker = await startBroker({
      args: [
        "--mqttwk.broker.mqtt-password-must=true",
        "--mqttwk.broker.auth.rsa-public-key=keystore/demo-auth-public.pem",
        `--mqttwk.broker.auth.password-file=${pwFile}`,
        `--mqttwk.broker.auth.http-url=http://127.0.0.1:${hook.addr.port}/mqtt/auth`,
        "--mqttwk.broker.auth.http-timeout=0.5",
        "--mqttwk.broker.auth.failure-delay-max=0.1",
      ],
    });
    const code = (username?: string, password?: string) =>
      connackCode(broker.url, { clientId: uid("c"), username, password });
    try {
      await t.step("start-up names the providers in order", () => {
        assert.match(broker.logs(), /authentication on: rsa, password-file, http/);
      });

      await t.step({
        name: "mosquitto_pub gets in with the original demo credentials",
        ignore: ignoreWithoutCli(),
        fn: async () => {
          const r = await runMosquittoPub([
            ...hostArgs(broker.host, broker.port),
            ...["-u", DEMO_USER, "-P", DEMO_PASSWORD, "-t", uid("demo"), "-m", "hi", "-q", "1"],
          ]);
          assert.equal(r.code, 0, r.stderr);
        },
      });

      await t.step({
        name: "mosquitto_pub with a wrong password fails with bad user name or password",
        ignore: ignoreWithoutCli(),
        fn: async () => {
          const r = await runMosquittoPub([
            ...hostArgs(broker.host, broker.port),
            ...["-u", DEMO_USER, "-P", WRONG_RSA, "-t", uid("demo"), "-m", "hi"],
          ]);
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, /bad user name or password/i);
        },
      });

      await t.step(
        "mqtt.js: demo credentials get in, a wrong password gets CONNACK 4",
        async () => {
          assert.equal(await code(DEMO_USER, DEMO_PASSWORD), 0);
          assert.equal(await code(DEMO_USER, WRONG_RSA), 4);
          assert.equal(await code("someone-else", DEMO_PASSWORD), 4);
        },
      );

      await t.step("a CONNECT without a username gets CONNACK 5 (not authorized)", async () => {
        assert.equal(await code(), 5);
      });

      await t.step("a password-file user gets in, with the wrong password gets 4", async () => {
        assert.equal(await code("alice", "wonderland"), 0);
        assert.equal(await code("alice", "Wonderland"), 4);
        assert.equal(await code("alice"), 4);
      });

      await t.step("the HTTP hook is asked and its allow, deny and 403 are followed", async () => {
        const clientId = uid("hooked");
        // Not a string a random client id (base 36) or a timestamp could contain by chance.
        const password = "Hook_Secret!7";
        assert.equal(
          await connackCode(broker.url, { clientId, username: "hook-ok", password }),
          0,
        );
        const body = bodies.find((b) => b.clientId === clientId)!;
        assert.equal(body.username, "hook-ok");
        assert.equal(body.password, password);
        assert.match(String(body.remoteAddress), /^127\.0\.0\.1:\d+$/);
        assert.equal(body.transport, "tcp");
        assert.equal(body.protocolVersion, 4);
        assert.equal(await code("hook-no", "pw"), 4);
        assert.equal(await code("hook-forbidden", "pw"), 5);
        assert.ok(!broker.logs().includes(password), "passwords are not logged");
      });

      await t.step("a hook that does not answer in time lets nobody in, and says so", async () => {
        const started = Date.now();
        assert.equal(await code("hook-slow", "pw"), 3);
        assert.ok(Date.now() - started < 1_400, "gave up after http-timeout");
        await broker.waitForLog(/auth hook http:\/\/127\.0\.0\.1:\d+\/mqtt\/auth no answer/);
      });

      await t.step(
        "a PUBLISH pipelined behind a refused CONNECT is never routed",
        () =>
          scoped(async (defer) => {
            const topic = uid("pipelined");
            const sub = await connectMqttJs(broker.url, {
              clientId: uid("s"),
              username: DEMO_USER,
              password: DEMO_PASSWORD,
            });
            defer(sub.close);
            await sub.subscribe(topic, 1);
            const c = await raw.RawClient.open(broker.host, broker.port);
            defer(c.close);
            await c.write(raw.concat(
              raw.connect({ clientId: uid("bad"), username: DEMO_USER, password: WRONG_RSA }),
              raw.publish({ topic, payload: "sneaky-0" }),
              raw.publish({ topic, payload: "sneaky-1", qos: 1, packetId: 7 }),
              raw.subscribe(8, [["#", 0]]),
            ));
            const ack = await c.expect(T.CONNACK);
            assert.equal(ack.returnCode, 4);
            const after = await c.expectClosed(3_000);
            assert.deepEqual(after.map((p) => p.name), [], "nothing after the CONNACK");
            // A control message published afterwards arrives; the sneaky ones never do.
            const ok = await connectMqttJs(broker.url, {
              clientId: uid("p"),
              username: DEMO_USER,
              password: DEMO_PASSWORD,
            });
            defer(ok.close);
            await ok.publish(topic, "control", { qos: 1 });
            await sub.inbox.waitFor((m) => m.payload === "control");
            assert.deepEqual(sub.inbox.on(topic).map((m) => m.payload), ["control"]);
          }),
      );

      await t.step(
        "with the hook down its users are refused and the broker keeps serving",
        async () => {
          await hook.shutdown();
          hookUp = false;
          assert.equal(await code("hook-ok", "pw-after-outage"), 3);
          await broker.waitForLog(/auth hook .* unreachable/);
          assert.equal(await code(DEMO_USER, DEMO_PASSWORD), 0);
          assert.equal(await code("alice", "wonderland"), 0);
        },
      );
    } finally {
      await broker.stop();
      if (hookUp) await hook.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
