/**
 * nginx (stream module, proxy_protocol on) in front of the broker: the broker must log the real
 * client's address, not nginx's. The client connects from 127.0.0.5 so the two can be told
 * apart from nginx's own 127.0.0.1.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { encode } from "../../src/codec/encoder.ts";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { freePort, ignoreWithout, listenerPort, requireBinary } from "../transport/helpers.ts";
import { waitFor } from "../helpers/wait.ts";

const NGINX = "/usr/sbin/nginx";
/** Debian builds the stream module as a separate package. */
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const HINT = "install the Debian packages nginx and libnginx-mod-stream";

async function startNginx(upstreams: { tcp: number; ws: number }) {
  requireBinary(NGINX, HINT);
  requireBinary(STREAM_MODULE, HINT);
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-nginx-" });
  const tcp = freePort();
  const ws = freePort();
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `load_module ${STREAM_MODULE};
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
stream {
  server { listen 127.0.0.1:${tcp}; proxy_pass 127.0.0.1:${upstreams.tcp}; proxy_protocol on; }
  server { listen 127.0.0.1:${ws}; proxy_pass 127.0.0.1:${upstreams.ws}; proxy_protocol on; }
}
`,
  );
  const child = new Deno.Command(NGINX, {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-e", `${dir}/error.log`],
    stdout: "null",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let refused = "";
  try {
    await waitFor(async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: tcp })).close();
        return true;
      } catch (err) {
        refused = String(err);
        return false;
      }
    }, { what: `nginx to accept on 127.0.0.1:${tcp}`, interval: 50, detail: () => refused });
  } catch (err) {
    child.kill("SIGKILL");
    const out = await child.output();
    throw new Error(`nginx did not start: ${err}\n${new TextDecoder().decode(out.stderr)}`);
  }
  return {
    tcp,
    ws,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      await child.output();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Sends a CONNECT from `localAddress` and resolves with the first bytes the broker answers. */
function connectFrom(port: number, localAddress: string, clientId: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => {
      s.write(encode({
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 4,
        clean: true,
        keepalive: 10,
        clientId,
      }, 4));
    });
    s.once("data", (d: Uint8Array) => {
      resolve(new Uint8Array(d));
      s.end(new Uint8Array([0xe0, 0x00]));
    });
    s.once("error", reject);
    s.once("close", () => reject(new Error("closed without an answer")));
  });
}

Deno.test({
  name: "behind nginx with proxy_protocol the broker sees the real client address",
  ignore: EXTERNAL || ignoreWithout(NGINX, "nginx") || ignoreWithout(STREAM_MODULE, "nginx stream"),
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker({
        args: [
          "--mqttwk.broker.proxy-protocol=tcp,ws",
          "--mqttwk.broker.websocket-enabled=true",
          "--mqttwk.broker.websocket-port=0",
        ],
      });
      defer(() => broker.stop());
      const wsPort = await listenerPort(broker, "ws");
      await broker.waitForLog(/listening ws \S+\/mqtt \(PROXY protocol\)/);
      const nginx = await startNginx({ tcp: broker.port, ws: wsPort });
      defer(() => nginx.stop());

      const id = uid("pp");
      const connack = await connectFrom(nginx.tcp, "127.0.0.5", id);
      assert.deepEqual([...connack], [0x20, 0x02, 0x00, 0x00]);
      await broker.waitForLog(
        new RegExp(`client ${id} connected from 127\\.0\\.0\\.5:\\d+ via tcp`),
      );

      const wsId = uid("ppws");
      const c = await connectMqttJs(`ws://127.0.0.1:${nginx.ws}/mqtt`, {
        clientId: wsId,
        wsOptions: { localAddress: "127.0.0.5" },
      } as Record<string, unknown>);
      await c.close();
      await broker.waitForLog(
        new RegExp(`client ${wsId} connected from 127\\.0\\.0\\.5:\\d+ via ws`),
      );

      // Straight to the broker, without the header: refused and logged with the peer.
      await assert.rejects(connectFrom(broker.port, "127.0.0.1", uid("direct")));
      await broker.waitForLog(/tcp: closing connection from 127\.0\.0\.1:\d+: missing PROXY/);
    }),
});
