/** Start-up checks of the SQLite store: the marker against a lost file, the disk-full message. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite.ts";
import { isDiskFull, unusable } from "../../src/store/sqlite_check.ts";

const quiet = { info() {}, warn() {}, error() {} };

Deno.test("a full disk at start-up says so and does not advise moving the file aside", () => {
  const e = unusable("/data/mqttwk.db", new Error("database or disk is full"));
  assert.match(e.message, /disk \(or quota\) holding it is full/);
  assert.match(e.message, /do NOT move it aside/);
  assert.ok(isDiskFull(Object.assign(new Error("write failed"), { code: "ENOSPC" })));
  assert.ok(!isDiskFull(new Error("file is not a database")));
  assert.match(unusable("/d/x.db", new Error("file is not a database")).message, /aside/);
});

Deno.test("a store that was created here and then lost refuses to start empty", async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-store-" });
  try {
    const opts = { dir, durability: "sync" as const, commitIntervalMs: 5, logger: quiet };
    const first = new SqliteStore(opts);
    await first.open();
    first.saveSession({
      clientId: "c",
      expiryInterval: 0,
      disconnectedAt: null,
      protocolVersion: 4,
    });
    await first.close();
    assert.match(Deno.readTextFileSync(join(dir, "mqttwk.db.created")), /^created /);
    Deno.writeFileSync(join(dir, "mqttwk.db"), new Uint8Array());
    await assert.rejects(new SqliteStore(opts).open(), /is empty \(0 bytes\)/);
    Deno.removeSync(join(dir, "mqttwk.db"));
    for (const f of ["mqttwk.db-wal", "mqttwk.db-shm"]) {
      try {
        Deno.removeSync(join(dir, f));
      } catch { /* not there */ }
    }
    await assert.rejects(new SqliteStore(opts).open(), /is missing.*delete .*mqttwk\.db\.created/);
    // Deleting the marker is the deliberate way to start empty.
    Deno.removeSync(join(dir, "mqttwk.db.created"));
    const fresh = new SqliteStore(opts);
    await fresh.open();
    assert.deepEqual(await fresh.loadSessions(), []);
    await fresh.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
