/** The OpenAPI document describes every route the router serves, and is served itself. */
import assert from "node:assert/strict";
import type { ApiEnv } from "../../src/http/context.ts";
import { allRoutes } from "../../src/http/mod.ts";
import { OPENAPI } from "../../src/http/openapi.ts";
import type { StatsFeed } from "../../src/http/stats_feed.ts";
import { scoped } from "../helpers/broker.ts";
import { call, startHttpApp } from "./helpers.ts";

const METHODS = ["get", "post", "put", "delete", "patch"];

Deno.test("every routed path and method is in the OpenAPI document, and nothing else is", () => {
  // Building the routes only reads the environment; no handler runs here.
  const routes = allRoutes({} as ApiEnv, {} as StatsFeed);
  const paths = OPENAPI.paths as Record<string, Record<string, unknown>>;
  const routed = new Set<string>();
  for (const r of routes) {
    const path = r.pattern.replace(/:(\w+)/g, "{$1}");
    const methods = r.method === "*" ? METHODS : [r.method.toLowerCase()];
    for (const m of methods) {
      routed.add(`${m} ${path}`);
      assert.ok(paths[path]?.[m], `${m.toUpperCase()} ${path} is not documented`);
    }
  }
  const documented = Object.entries(paths).flatMap(([path, ops]) =>
    Object.keys(ops).filter((k) => METHODS.includes(k)).map((m) => `${m} ${path}`)
  );
  assert.deepEqual(documented.filter((d) => !routed.has(d)), [], "documented but not routed");
  assert.ok(routes.length >= 16, `${routes.length} routes`);
});

Deno.test("/api/v1/openapi.json serves the document without a login", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-openapi-" });
  await scoped(async (defer) => {
    defer(() => Deno.remove(dir, { recursive: true }));
    // A keys file with a key in it: the API is closed, the document is not.
    await Deno.writeTextFile(`${dir}/k`, `ops:admin:${"0".repeat(64)}\n`);
    const { app, base } = await startHttpApp([`--mqttwk.http.api-keys-file=${dir}/k`]);
    defer(() => app.stop());
    assert.equal((await call(base, "/api/v1/status")).status, 401);
    const served = await call(base, "/api/v1/openapi.json");
    assert.equal(served.status, 200);
    assert.equal(served.body.openapi, "3.1.0");
    assert.deepEqual(served.body, JSON.parse(JSON.stringify(OPENAPI)));
  });
});
