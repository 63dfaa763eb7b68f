/**
 * A real headless Chromium runs mqtt.js's browser bundle against the broker's ws:// listener:
 * the page subscribes, publishes, and shows what it received.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { ignoreWithout, listenerPort, requireBinary } from "../transport/helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** mqtt.js's browser bundle from the npm package Deno installed into node_modules. */
async function mqttBundle(): Promise<string> {
  const root = new URL("../../node_modules/.deno/", import.meta.url);
  for await (const e of Deno.readDir(root)) {
    if (!e.isDirectory || !e.name.startsWith("mqtt@")) continue;
    const file = new URL(`${e.name}/node_modules/mqtt/dist/mqtt.min.js`, root);
    try {
      return await Deno.readTextFile(file);
    } catch { /* another version without a bundle */ }
  }
  throw new Error("mqtt.min.js not found under node_modules/.deno; run `deno install`");
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>mqttwk browser test</title>
<script src="/mqtt.min.js"></script></head>
<body><p id="status">loading</p><p id="received"></p>
<script>
  const params = new URLSearchParams(location.search);
  const topic = params.get("topic");
  const status = document.getElementById("status");
  const client = mqtt.connect(params.get("broker"), { reconnectPeriod: 0, clientId: params.get("id") });
  client.on("error", (e) => { status.textContent = "error: " + e.message; });
  client.on("connect", () => {
    status.textContent = "connected";
    client.subscribe(topic, { qos: 1 }, (err) => {
      if (err) { status.textContent = "subscribe failed: " + err.message; return; }
      client.publish(topic, "hello from chromium", { qos: 1 });
    });
  });
  client.on("message", (t, payload) => {
    document.getElementById("received").textContent = t + " " + payload.toString();
    status.textContent = "received";
  });
</script></body></html>`;

Deno.test({
  name: "headless Chromium with mqtt.js subscribes and publishes over ws://",
  ignore: EXTERNAL || ignoreWithout(CHROMIUM, "browser"),
  fn: () =>
    scoped(async (defer) => {
      requireBinary(CHROMIUM, "install the Debian package chromium");
      const { chromium } = await import("playwright-core");
      const broker = await startBroker({
        args: ["--mqttwk.broker.websocket-enabled=true", "--mqttwk.broker.websocket-port=0"],
      });
      defer(() => broker.stop());
      const wsPort = await listenerPort(broker, "ws");

      const bundle = await mqttBundle();
      const site = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/mqtt.min.js") {
          return new Response(bundle, { headers: { "content-type": "text/javascript" } });
        }
        if (path === "/") return new Response(PAGE, { headers: { "content-type": "text/html" } });
        return new Response("not found", { status: 404 });
      });
      defer(() => site.shutdown());

      const profile = await Deno.makeTempDir({ prefix: "mqttwk-chromium-" });
      defer(() => Deno.remove(profile, { recursive: true }));
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: ARGS,
        headless: true,
      });
      defer(() => context.close());
      const page = context.pages()[0] ?? await context.newPage();
      const topic = uid("browser");
      const id = uid("chromium");
      const q = new URLSearchParams({
        broker: `ws://127.0.0.1:${wsPort}/mqtt`,
        topic,
        id,
      });
      await page.goto(`http://127.0.0.1:${site.addr.port}/?${q}`);
      // A string, because this runs in the page, whose DOM types Deno's checker does not know.
      await page.waitForFunction(
        `!["loading", "connected"].includes(document.getElementById("status").textContent)`,
        undefined,
        { timeout: 15_000 },
      );
      assert.equal(await page.textContent("#status"), "received");
      assert.equal(await page.textContent("#received"), `${topic} hello from chromium`);
      await broker.waitForLog(
        new RegExp(`client ${id} connected from 127\\.0\\.0\\.1:\\d+ via ws`),
      );
    }),
});
