/**
 * The `$SYS` figures without a broker: Mosquitto's load average formula, the cluster's totals
 * (summed, except what every node holds a copy of), and the payload formats.
 */
import assert from "node:assert/strict";
import { clusterValues, nodeLevel, sysTopics } from "../../src/broker/sys_figures.ts";
import { LoadAverages } from "../../src/broker/sys_load.ts";
import { RetainedIndex } from "../../src/broker/retained.ts";
import type { StoredMessage } from "../../src/broker/model.ts";

Deno.test("load averages follow Mosquitto's exponential formula, per minute", () => {
  const load = new LoadAverages(["messages/received"]);
  const out: Record<string, number> = {};
  load.update([0], 0);
  load.update([60], 60_000); // 60 in one minute: 60 per minute over that interval
  load.into(out);
  assert.equal(out["load/messages/received/1min"].toFixed(2), (60 * (1 - Math.exp(-1))).toFixed(2));
  assert.equal(
    out["load/messages/received/5min"].toFixed(2),
    (60 * (1 - Math.exp(-0.2))).toFixed(2),
  );
  // A steady rate converges to itself.
  for (let i = 2; i < 200; i++) load.update([60 * i], 60_000 * i);
  load.into(out);
  assert.equal(out["load/messages/received/1min"].toFixed(2), "60.00");
  assert.ok(out["load/messages/received/15min"] > 59);
});

Deno.test("cluster totals sum the nodes, but max the replicated retained set and the uptime", () => {
  const total = clusterValues([
    {
      node: "a",
      at: 0,
      version: "v",
      values: { connected: 3, uptime: 50, retained: 7, bytesIn: 10 },
    },
    {
      node: "b",
      at: 0,
      version: "v",
      values: { connected: 2, uptime: 90, retained: 7, bytesIn: 5 },
    },
  ]);
  assert.deepEqual(total, { connected: 5, uptime: 90, retained: 7, bytesIn: 15 });
});

Deno.test("payloads are in Mosquitto's formats, and node ids make one topic level", () => {
  const t = new Map(
    sysTopics({ uptime: 12, connected: 2, disconnected: 1, "load/x/1min": 1.234 }, "v"),
  );
  assert.equal(t.get("uptime"), "12 seconds");
  assert.equal(t.get("clients/total"), "3");
  assert.equal(t.get("load/x/1min"), "1.23");
  assert.equal(t.has("heap/current"), false, "no heap figure without a heap source");
  assert.equal(nodeLevel("a/b+#"), "a_b__");
});

Deno.test("the retained index keeps its payload bytes through set, replace and delete", () => {
  const idx = new RetainedIndex();
  const msg = (topic: string, n: number) =>
    ({ topic, payload: new Uint8Array(n) }) as StoredMessage;
  idx.set("a", msg("a", 10));
  idx.set("b/c", msg("b/c", 5));
  assert.equal(idx.bytes, 15);
  idx.set("a", msg("a", 3));
  assert.equal(idx.bytes, 8);
  idx.set("b/c", null);
  idx.set("missing", null);
  assert.equal(idx.bytes, 3);
  assert.equal(idx.size, 1);
});
