/**
 * MQTT over TLS with the real Mosquitto command-line clients: server verification with a test
 * CA, mutual TLS, refusal of untrusted client certificates, CN as username, and certificate
 * reload without a restart.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { ignoreWithoutCli, mosquittoPub, mosquittoSub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { listenerPort, makeCerts, runFor, tlsBrokerArgs } from "../transport/helpers.ts";

const ignore = EXTERNAL || ignoreWithoutCli();

function tlsArgs(c: { serverCert: string; serverKey: string }, extra: string[] = []): string[] {
  return tlsBrokerArgs(c, ["--mqttwk.broker.wss-enabled=false", ...extra]);
}

Deno.test({
  name: "mosquitto clients publish and subscribe over TLS trusting the test CA",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({ args: tlsArgs(certs) });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const conn = ["-h", "127.0.0.1", "-p", String(port), "--cafile", certs.ca];
      const topic = uid("tls");
      const sub = await mosquittoSub([...conn, "-t", topic, "-q", "1"]);
      defer(() => sub.stop());
      await mosquittoPub([...conn, "-t", topic, "-q", "1", "-m", "over tls"]);
      const [m] = await sub.waitForCount(1);
      assert.equal(m.payload, "over tls");
      assert.match(broker.logs(), /connected from 127\.0\.0\.1:\d+ via tls/);

      // A client that does not trust the broker's CA gives up during the handshake.
      const other = await makeCerts();
      defer(() => Deno.remove(other.dir, { recursive: true }));
      const r = await runFor("mosquitto_pub", [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "--cafile",
        other.ca,
        "-t",
        topic,
        "-m",
        "x",
      ]); // deno-fmt-ignore
      assert.notEqual(r.code, 0, "a client with the wrong CA must fail to connect");
    }),
});

Deno.test({
  name: "mutual TLS admits a client certificate from the CA, uses its CN, refuses others",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: tlsArgs(certs, [
          "--mqttwk.broker.ssl-client-auth=required",
          `--mqttwk.broker.ssl-ca-file=${certs.ca}`,
          "--mqttwk.broker.ssl-cn-as-username=true",
        ]),
      });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const base = ["-h", "127.0.0.1", "-p", String(port), "--cafile", certs.ca];
      const withCert = [...base, "--cert", certs.clientCert, "--key", certs.clientKey];
      const topic = uid("mtls");

      const sub = await mosquittoSub([...withCert, "-t", topic, "-i", uid("sub")]);
      defer(() => sub.stop());
      await mosquittoPub([...withCert, "-t", topic, "-m", "mutual", "-u", "claimed-name"]);
      const [m] = await sub.waitForCount(1);
      assert.equal(m.payload, "mutual");
      await broker.waitForLog(/tls client 127\.0\.0\.1:\d+ presented certificate CN=alice; using/);

      const untrusted = await runFor("mosquitto_pub", [
        ...base,
        "--cert",
        certs.untrustedCert,
        "--key",
        certs.untrustedKey,
        "-t",
        topic,
        "-m",
        "intruder",
      ]); // deno-fmt-ignore
      assert.notEqual(untrusted.code, 0, "an untrusted client certificate must be refused");
      const none = await runFor("mosquitto_pub", [...base, "-t", topic, "-m", "anonymous"]);
      assert.notEqual(none.code, 0, "a client without a certificate must be refused");
      await broker.waitForLog(/tls: TLS handshake with 127\.0\.0\.1:\d+ failed/);
      // A marker sent after both refused clients have exited: a wrongly admitted message would
      // have been routed before it, so once the marker is in, nothing else can be on its way.
      await mosquittoPub([...withCert, "-t", topic, "-m", "marker"]);
      await sub.waitForCount(2);
      assert.deepEqual(sub.messages.map((x) => x.payload), ["mutual", "marker"]);
    }),
});

Deno.test({
  name: "optional client certificates admit clients without one and refuse untrusted ones",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const broker = await startBroker({
        args: tlsArgs(certs, [
          "--mqttwk.broker.ssl-client-auth=optional",
          `--mqttwk.broker.ssl-ca-file=${certs.ca}`,
        ]),
      });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const base = ["-h", "127.0.0.1", "-p", String(port), "--cafile", certs.ca];
      const topic = uid("opt");
      await mosquittoPub([...base, "-t", topic, "-m", "no certificate"]);
      await mosquittoPub([
        ...base,
        "--cert",
        certs.clientCert,
        "--key",
        certs.clientKey,
        "-t",
        topic,
        "-m",
        "cert",
      ]); // deno-fmt-ignore
      const bad = await runFor("mosquitto_pub", [
        ...base, "--cert", certs.untrustedCert, "--key", certs.untrustedKey, "-t", topic, "-m", "x",
      ]); // deno-fmt-ignore
      assert.notEqual(bad.code, 0);
      await broker.waitForLog(/refusing 127\.0\.0\.1:\d+: client certificate not trusted/);
    }),
});

Deno.test({
  name: "a renewed server certificate is used without a restart and open connections stay up",
  ignore,
  fn: () =>
    scoped(async (defer) => {
      const certs = await makeCerts();
      defer(() => Deno.remove(certs.dir, { recursive: true }));
      const next = await makeCerts();
      defer(() => Deno.remove(next.dir, { recursive: true }));
      // The broker reads copies, so the test can swap them like a certificate renewal would.
      const live = await Deno.makeTempDir({ prefix: "mqttwk-live-" });
      defer(() => Deno.remove(live, { recursive: true }));
      await Deno.copyFile(certs.serverCert, `${live}/server.pem`);
      await Deno.copyFile(certs.serverKey, `${live}/server.key`);
      const broker = await startBroker({
        args: tlsArgs({ serverCert: `${live}/server.pem`, serverKey: `${live}/server.key` }, [
          "--mqttwk.broker.ssl-watch-interval=0.2",
        ]),
      });
      defer(() => broker.stop());
      const port = await listenerPort(broker, "tls");
      const ca = await Deno.readTextFile(certs.ca);
      const topic = uid("reload");
      const old = await connectMqttJs(`mqtts://127.0.0.1:${port}`, { ca, servername: "localhost" });
      defer(() => old.close());
      await old.subscribe(topic, 1);

      // Renewal as certbot does it: new files appear, the broker notices on its own.
      await Deno.copyFile(next.serverKey, `${live}/server.key.new`);
      await Deno.copyFile(next.serverCert, `${live}/server.pem.new`);
      await Deno.rename(`${live}/server.key.new`, `${live}/server.key`);
      await Deno.rename(`${live}/server.pem.new`, `${live}/server.pem`);
      await broker.waitForLog(/reloaded TLS certificate .* after a file change/);

      const conn = ["-h", "127.0.0.1", "-p", String(port), "-t", topic, "-q", "1"];
      await mosquittoPub([...conn, "--cafile", next.ca, "-m", "new certificate"]);
      const stale = await runFor("mosquitto_pub", [...conn, "--cafile", certs.ca, "-m", "old"]);
      assert.notEqual(stale.code, 0, "the old certificate must no longer be served");
      const m = await old.inbox.waitFor((x) => x.topic === topic);
      assert.equal(m.payload, "new certificate", "the connection from before the reload works");

      // SIGHUP reloads too, and a broken pair is refused while the current one stays.
      await Deno.writeTextFile(`${live}/server.key`, await Deno.readTextFile(certs.serverKey));
      await broker.waitForLog(/TLS reload failed, keeping the previous certificate/);
      await mosquittoPub([...conn, "--cafile", next.ca, "-m", "still new"]);
    }),
});
