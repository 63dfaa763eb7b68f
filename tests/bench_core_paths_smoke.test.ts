/**
 * Keeps bench/core_paths.ts from rotting: one short round of every scenario, this checkout against
 * itself as the baseline, and a row per scenario with both figures. Nothing here asserts on speed.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test({
  name: "bench: core_paths runs every scenario in-process and compares two checkouts",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", "bench/core_paths.ts", "--rounds", "1", "--deliveries", "20000"],
      cwd: ROOT,
      env: { MQTTWK_BENCH_BASELINE: ROOT },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, new TextDecoder().decode(out.stderr).slice(-2000));
    for (
      const s of [
        "fanin-q1",
        "fanout-q1",
        "p2p-q1",
        "fanin-q0",
        "fanout-q0",
        "fanout-q1-durable",
        "p2p-q1-durable",
      ]
    ) {
      const row = text.split("\n").find((l) => l.startsWith(s + " "));
      assert.ok(row, `no row for ${s} in:\n${text}`);
      const cells = row.trim().split(/\s+/);
      assert.equal(cells.length, 4, row);
      for (const c of cells.slice(1)) assert.ok(Number(c.replaceAll(",", "")) > 0, row);
    }
  },
});
