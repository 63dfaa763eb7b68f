/** `deno task ctl` end to end: a real subprocess against an in-process app with an API key. */
import assert from "node:assert/strict";
import { scoped, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { freePort } from "../helpers/redis.ts";
import { createKey, startHttpApp } from "./helpers.ts";

const ROOT = new URL("../../", import.meta.url);

async function ctl(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "ctl", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const td = new TextDecoder();
  return { code: out.code, stdout: td.decode(out.stdout), stderr: td.decode(out.stderr) };
}

Deno.test("deno task ctl lists, kicks, publishes and manages retained messages, with exit codes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-ctl-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    const key = await createKey(`${dir}/keys`, "ops", "admin");
    const { app, base, url } = await startHttpApp([`--mqttwk.http.api-keys-file=${dir}/keys`]);
    defer(() => app.stop());
    const env = { MQTTWK_URL: base, MQTTWK_API_KEY: key };

    const status = await ctl(["status"], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^mqttwk \S+ {2}node \S+/);

    const id = uid("ctl-client");
    const c = await connectMqttJs(url, { clientId: id });
    defer(() => c.close());
    await c.subscribe("ctl/#", 1);
    const list = await ctl(["clients", "list"], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^CLIENTID\s+USERNAME\s+ADDRESS/);
    assert.ok(list.stdout.includes(id));
    assert.match(list.stdout, /\(1 shown of 1\)/);

    // Flags instead of the environment, and JSON output.
    const pub = await ctl([
      "--url",
      base,
      "--key",
      key,
      "publish",
      "ctl/t",
      "from ctl",
      "--qos",
      "1",
      "--retain",
      "--user-property",
      "by=ctl",
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    const m = await c.inbox.waitFor((x) => x.topic === "ctl/t");
    assert.equal(m.payload, "from ctl");
    const got = await ctl(["retained", "get", "ctl/t", "--json"], env);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(JSON.parse(got.stdout).payload, "from ctl");
    assert.deepEqual(JSON.parse(got.stdout).properties.userProperties, [["by", "ctl"]]);
    assert.equal((await ctl(["retained", "delete", "ctl/t"], env)).code, 0);
    const gone = await ctl(["retained", "get", "ctl/t"], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /error 404: no retained message/);

    const closed = new Promise<void>((resolve) => c.client.once("close", () => resolve()));
    assert.equal((await ctl(["clients", "kick", id], env)).code, 0);
    await closed;

    const wrong = await ctl(["status"], { ...env, MQTTWK_API_KEY: "mqk_wrong" });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /error 401/);
    assert.equal((await ctl(["frobnicate"], env)).code, 2);
    const away = await ctl(["status"], { ...env, MQTTWK_URL: `http://127.0.0.1:${freePort()}` });
    assert.equal(away.code, 3);
    assert.match(away.stderr, /cannot reach/);
  });
});
