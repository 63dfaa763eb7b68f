/**
 * deploy/nginx/cluster.conf in front of two cluster nodes: nginx runs as this test's own process
 * with a temp config (the file's upstreams and ports rewritten to the test's).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import mqtt from "mqtt";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { freePort, REDIS_IGNORE, startRedis } from "../helpers/redis.ts";
import { scoped, uid } from "../helpers/broker.ts";
import { waitFor } from "../helpers/wait.ts";
import { awaitRoute, spawnNode } from "../cluster/nodes.ts";

const NGINX = "/usr/sbin/nginx";
const MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
const haveNginx = (() => {
  try {
    Deno.statSync(NGINX);
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "nginx with deploy/nginx/cluster.conf balances clients over two nodes that act as one",
  ignore: REDIS_IGNORE || (!haveNginx && Deno.env.get("CI") !== "true"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    scoped(async (defer) => {
      const redis = await startRedis();
      defer(() => redis.kill());
      const args = [`--redis.port=${redis.port}`];
      const n1 = await spawnNode("n1", args);
      defer(() => n1.kill());
      const n2 = await spawnNode("n2", args);
      defer(() => n2.kill());

      const dir = await Deno.makeTempDir({ prefix: "mqttwk-nginx-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const front = freePort();
      const frontWs = freePort();
      let conf = await Deno.readTextFile(
        new URL("../../deploy/nginx/cluster.conf", import.meta.url),
      );
      conf = conf.replace(/^(\s*)server 10\.0\.0\.\d+:8885[^;]*;\n/gm, "")
        .replace(/^(\s*)server 10\.0\.0\.\d+:9995[^;]*;\n/gm, "")
        .replace(
          /(upstream mqttwk_cluster_tcp \{\n\s*least_conn;\n)/,
          `$1        server 127.0.0.1:${n1.port};\n        server 127.0.0.1:${n2.port};\n`,
        )
        .replace(
          /(upstream mqttwk_cluster_ws \{\n\s*least_conn;\n)/,
          `$1        server 127.0.0.1:1;\n`,
        )
        .replace("listen 1883;", `listen 127.0.0.1:${front};`)
        .replace("listen 8083;", `listen 127.0.0.1:${frontWs};`);
      assert.ok(conf.includes(`server 127.0.0.1:${n1.port}`));
      const main = [
        (await exists(MODULE)) ? `load_module ${MODULE};` : "",
        "daemon off;",
        "master_process off;",
        `pid ${join(dir, "nginx.pid")};`,
        "error_log stderr warn;",
        "events { worker_connections 256; }",
        conf,
      ].join("\n");
      await Deno.writeTextFile(join(dir, "nginx.conf"), main);
      const nginx = new Deno.Command(NGINX, {
        args: ["-c", join(dir, "nginx.conf"), "-p", dir, "-e", "stderr"],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      defer(async () => {
        try {
          nginx.kill("SIGKILL");
        } catch { /* gone */ }
        await nginx.status;
        await nginx.stderr.cancel().catch(() => {});
      });
      let refused = "";
      await waitFor(async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: front })).close();
          return true;
        } catch (e) {
          refused = String(e);
          return false;
        }
      }, {
        what: `nginx to accept on 127.0.0.1:${front}`,
        interval: 50,
        detail: () => refused,
      });
      const url = `mqtt://127.0.0.1:${front}`;
      const t = uid("nginx");
      // least_conn spreads these over both nodes; the cluster makes them one broker.
      const subs = [];
      for (let i = 0; i < 4; i++) {
        const s = await connectMqttJs(url);
        defer(s.close);
        await s.subscribe(`${t}/#`, 1);
        subs.push(s);
      }
      const pub = await connectMqttJs(url);
      defer(pub.close);
      for (const s of subs) await awaitRoute(pub, s, `${t}/probe`);
      await pub.publish(`${t}/x`, "through nginx", { qos: 1 });
      for (const s of subs) {
        const m = await s.inbox.waitFor((m) => m.topic === `${t}/x`);
        assert.equal(m.payload, "through nginx");
      }
      // A persistent session resumes through nginx after its node is gone.
      const id = `${t}-p`;
      const p = await connectMqttJs(url, { clientId: id, clean: false });
      await p.subscribe(`${t}/p`, 1);
      await p.close();
      await pub.publish(`${t}/p`, "while away", { qos: 1 });
      const got: string[] = [];
      const again = mqtt.connect(url, { clientId: id, clean: false, reconnectPeriod: 0 });
      again.on("message", (_t, payload) => got.push(new TextDecoder().decode(payload)));
      again.on("error", () => {});
      defer(() => again.endAsync());
      await waitFor(() => got.includes("while away"), {
        what: "the message queued while away at the resumed session",
        timeout: 10_000,
        detail: () => `got ${JSON.stringify(got)}`,
      });
      assert.deepEqual(got, ["while away"]);
    }),
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
