/**
 * Chaos: the store file damaged while the broker is stopped (garbled pages, zero length), and
 * the online backup that gets it back (issue 17, item 3). The broker is a real child process.
 *
 * A persistent subscriber goes offline while numbered publishers fill its queue; a backup is
 * taken with `deno task backup` while they keep publishing. Then the file is damaged: the broker
 * must refuse to start, naming the file and the way out. With the backup restored it starts, and
 * the subscriber receives every message acknowledged before the backup began.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { InvariantChecker } from "./invariants.ts";
import { ChaosPublisher, ChaosSubscriber } from "./driver.ts";
import { waitFor } from "../helpers/wait.ts";
import { ChaosNode } from "./node.ts";
import { tempDir } from "./config.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function backup(dataDir: string, dest: string): Promise<string> {
  const out = await new Deno.Command("deno", {
    args: ["task", "-q", "backup", dest, "--data-dir", dataDir],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  return text;
}

/** Overwrites `pages` 4 KiB pages in the middle of `path` with garbage. */
function garble(path: string, pages: number): void {
  const data = Deno.readFileSync(path);
  const mid = Math.floor(data.byteLength / 4096 / 2) * 4096;
  for (let i = 0; i < pages * 4096; i++) data[mid + i] = (i * 131 + 17) & 0xff;
  Deno.writeFileSync(path, data);
}

async function refusesToStart(node: ChaosNode, expect: RegExp): Promise<string> {
  node.spawn();
  const status = await node.wait();
  const log = node.lifeLogs();
  assert.notEqual(status.code, 0, `the broker started on a damaged store:\n${log}`);
  assert.match(log, expect);
  return log;
}

Deno.test({
  name: "a damaged or emptied store refuses the start; a backup taken under load restores it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = tempDir("damaged");
    const db = join(dir, "mqttwk.db");
    const copy = join(dir, "backup.db");
    const node = new ChaosNode([`--data-dir=${dir}`, "--mqttwk.broker.max-queued-messages=100000"]);
    const live = new InvariantChecker("backup under load (all acked)");
    const restored = new InvariantChecker("damaged store, restored from backup");
    await node.start();
    try {
      // A persistent subscriber that then goes offline: its queue fills the store.
      const sub = new ChaosSubscriber("damaged-sub", node, live, 1);
      await sub.ready();
      await sub.end();
      const pubs = [0, 1].map((i) => new ChaosPublisher(`dmg${i}`, node, live, 1, 20));
      while (live.ackedCount < 3000) await new Promise((r) => setTimeout(r, 10));
      // Everything acknowledged before the backup starts must be in it.
      const before = live.ackedKeys();
      const report = await backup(dir, copy);
      console.log(report.trim());
      assert.ok(live.ackedCount > before.length, "publishing stopped while the backup ran");
      // The subscriber is offline: only the publishers' last acknowledgements are waited for.
      for (const p of pubs) p.stop();
      await waitFor(() => pubs.every((p) => p.settled), {
        what: "the publishers' last acknowledgements",
        timeout: 30_000,
      });
      for (const p of pubs) await p.end();
      // The copy opens on its own and holds the queue (at least what was acked before it).
      const c = new DatabaseSync(copy, { readOnly: true });
      const rows = (c.prepare("SELECT count(*) AS n FROM outbound").get() as { n: number }).n;
      c.close();
      assert.ok(rows >= before.length, `backup holds ${rows} of ${before.length} messages`);
      await node.stop();

      // Two garbled pages: refused, naming the file and the recovery options.
      const good = Deno.readFileSync(db);
      garble(db, 2);
      await refusesToStart(node, new RegExp(`${db}.*damaged[\\s\\S]*deno task backup`));
      // Zero length (a bad copy): refused, not an empty start.
      Deno.writeFileSync(db, new Uint8Array());
      await refusesToStart(node, /is empty \(0 bytes\).*mqttwk\.db\.created/);
      // Missing altogether: the same.
      Deno.removeSync(db);
      await refusesToStart(node, /is missing/);

      // Restore the backup: the subscriber gets everything acknowledged before it was taken.
      Deno.copyFileSync(copy, db);
      for (const k of before) {
        const i = k.lastIndexOf(":");
        restored.acked(k.slice(0, i), Number(k.slice(i + 1)));
      }
      await node.start();
      const again = new ChaosSubscriber("damaged-sub", node, restored, 1);
      await again.ready();
      const deadline = Date.now() + 30_000;
      while (restored.missing() > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await again.end();
      restored.check({ duplicatesAllowed: true });
      assert.ok(good.byteLength > 8 * 4096, "the store was too small to garble its middle");
    } finally {
      await node.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
