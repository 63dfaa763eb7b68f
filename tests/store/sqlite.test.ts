import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { SqliteStore, type SqliteStoreOptions } from "../../src/store/sqlite.ts";
import { bytes, entry, message, session, storeContract } from "./contract.ts";
import { waitFor } from "../helpers/wait.ts";

type Extra = Partial<Omit<SqliteStoreOptions, "dir">>;

function opts(dir: string, extra: Extra = {}): SqliteStoreOptions {
  return { dir, durability: "sync", commitIntervalMs: 5, logger: quietLogger(), ...extra };
}

function contractFor(name: string, extra: Extra) {
  storeContract(name, async () => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-store-" });
    return {
      store: new SqliteStore(opts(dir, extra)),
      reopen: () => Promise.resolve(new SqliteStore(opts(dir, extra))),
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  });
}

contractFor("sqlite worker sync", {});
contractFor("sqlite worker interval", { durability: "interval" });
contractFor("sqlite in-thread sync", { worker: false });
contractFor("sqlite tiny batches", { worker: false, maxBatchOps: 3, commitIntervalMs: 1 });

function quietLogger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => lines.push("info " + m),
    warn: (m: string) => lines.push("warn " + m),
    error: (m: string) => lines.push("error " + m),
  };
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A second connection, as an operator (or a failing disk) would interfere with the file. */
function side(dir: string): DatabaseSync {
  const db = new DatabaseSync(join(dir, "mqttwk.db"));
  db.exec("PRAGMA busy_timeout = 5000");
  return db;
}

Deno.test("sqlite: a full batch never commits a QoS 2 message's copies without its packet id", async () => {
  await withDir(async (dir) => {
    // In-thread, a size-triggered commit runs synchronously: a split would be on disk at once.
    const store = new SqliteStore(
      opts(dir, { worker: false, maxBatchOps: 3, commitIntervalMs: 60_000 }),
    );
    await store.open();
    try {
      store.saveSession(session("pub"));
      for (let i = 0; i < 5; i++) store.saveSession(session(`sub${i}`));
      await store.flush();
      store.beginUnit();
      for (let i = 0; i < 5; i++) store.putOutbound(`sub${i}`, entry(1, { qos: 2 }));
      const db = side(dir);
      try {
        // Past maxBatchOps inside the unit: nothing of it may be on disk yet.
        assert.equal(
          (db.prepare("SELECT count(*) AS n FROM outbound").get() as { n: number }).n,
          0,
        );
        store.addInboundQos2("pub", 9);
        store.endUnit();
        // The unit's end starts the commit that the size asked for, all of it at once.
        assert.equal(
          (db.prepare("SELECT count(*) AS n FROM outbound").get() as { n: number }).n,
          5,
        );
        assert.equal(
          (db.prepare("SELECT count(*) AS n FROM inbound_qos2").get() as { n: number }).n,
          1,
        );
      } finally {
        db.close();
      }
    } finally {
      await store.close();
    }
  });
});

for (const worker of [true, false]) {
  const mode = worker ? "worker" : "in-thread";

  Deno.test(`sqlite ${mode}: garbage database file makes open() fail, untouched`, async () => {
    await withDir(async (dir) => {
      const path = join(dir, "mqttwk.db");
      const garbage = new Uint8Array(8192).map((_, i) => (i * 31 + 7) & 0xff);
      await Deno.writeFile(path, garbage);
      const store = new SqliteStore(opts(dir, { worker }));
      await assert.rejects(store.open(), (e: Error) => {
        assert.ok(e.message.includes(path), e.message);
        assert.match(e.message, /not a database/);
        assert.match(e.message, /move .* aside or restore it from a backup/);
        return true;
      });
      await store.close();
      assert.deepEqual(await Deno.readFile(path), garbage);
    });
  });

  Deno.test(`sqlite ${mode}: a foreign SQLite database is refused`, async () => {
    await withDir(async (dir) => {
      const db = side(dir);
      db.exec("CREATE TABLE customers (id INTEGER)");
      db.close();
      const store = new SqliteStore(opts(dir, { worker }));
      await assert.rejects(store.open(), /not an MqttWk store/);
    });
  });

  Deno.test(`sqlite ${mode}: failing commit rejects flush, is logged, then recovers`, async () => {
    await withDir(async (dir) => {
      const logger = quietLogger();
      const store = new SqliteStore(opts(dir, { worker, logger }));
      await store.open();
      store.saveSession(session("a"));
      await store.flush();

      const db = side(dir);
      db.exec(`CREATE TRIGGER fail BEFORE INSERT ON retained
               BEGIN SELECT RAISE(ABORT, 'simulated disk full'); END`);
      const props = {
        userProperties: [["k", "v"]] as [string, string][],
        correlationData: bytes([0, 1]),
      };
      const r1 = message("r1", { topic: "t", properties: props });
      store.setRetained("t", r1);
      store.putOutbound("a", entry(1));
      await assert.rejects(store.flush(), /simulated disk full/);
      assert.ok(logger.lines.some((l) => l.startsWith("error") && l.includes("simulated")));
      // Mutations issued after the failure queue up behind the failed ones.
      const e2 = entry(2, { message: message("m2", { properties: props, expiresAt: 5 }) });
      store.putOutbound("a", e2);
      store.removeOutbound("a", 1);
      await assert.rejects(store.flush(), /simulated disk full/);

      db.exec("DROP TRIGGER fail");
      db.close();
      await store.flush();
      assert.deepEqual(await store.loadRetained(), [r1]);
      assert.deepEqual((await store.loadSession("a"))?.outbound, [e2]);
      assert.ok(logger.lines.some((l) => l.startsWith("info") && l.includes("work again")));
      await store.close();
    });
  });

  Deno.test(`sqlite ${mode}: put then remove in one batch never writes the row`, async () => {
    await withDir(async (dir) => {
      const store = new SqliteStore(opts(dir, { worker }));
      await store.open();
      const db = side(dir);
      db.exec(`CREATE TABLE writes (n INTEGER);
               CREATE TRIGGER count AFTER INSERT ON outbound BEGIN INSERT INTO writes VALUES (1); END`);
      store.saveSession(session("a"));
      for (let i = 1; i <= 100; i++) store.putOutbound("a", entry(i));
      for (let i = 1; i <= 100; i++) store.removeOutbound("a", i);
      store.putOutbound("a", entry(101));
      await store.flush();
      const n = db.prepare("SELECT count(*) AS n FROM writes").get() as { n: number };
      assert.equal(n.n, 1);
      db.close();
      assert.deepEqual((await store.loadSession("a"))?.outbound, [entry(101)]);
      await store.close();
    });
  });
}

Deno.test("sqlite: file layout is WAL with incremental auto-vacuum in a created dir", async () => {
  await withDir(async (parent) => {
    const dir = join(parent, "nested", "data");
    const store = new SqliteStore(opts(dir));
    await store.open();
    assert.equal(store.path, join(dir, "mqttwk.db"));
    const db = side(dir);
    assert.equal(
      (db.prepare("PRAGMA journal_mode").get() as { journal_mode: string })
        .journal_mode,
      "wal",
    );
    assert.equal(
      (db.prepare("PRAGMA auto_vacuum").get() as { auto_vacuum: number })
        .auto_vacuum,
      2,
    );
    const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
      .all() as { name: string }[]).map((t) => t.name).sort();
    assert.deepEqual(tables, [
      "inbound_qos2",
      "meta",
      "outbound",
      "retained",
      "sessions",
      "subscriptions",
    ]);
    db.close();
    await store.close();
  });
});

Deno.test("sqlite interval: flush resolves at once; data is committed within the interval", async () => {
  await withDir(async (dir) => {
    const store = new SqliteStore(opts(dir, { durability: "interval", commitIntervalMs: 20 }));
    await store.open();
    store.saveSession(session("a"));
    let resolved = false;
    store.flush().then(() => (resolved = true));
    await Promise.resolve();
    assert.ok(resolved);
    const db = side(dir);
    const count = () => (db.prepare("SELECT count(*) AS n FROM sessions").get() as { n: number }).n;
    assert.equal(count(), 0);
    await waitFor(() => count() === 1, { what: "the interval commit", timeout: 200 });
    assert.equal(count(), 1);
    db.close();
    await store.close();
  });
});

Deno.test("sqlite: expiring many sessions gives the space back", async () => {
  await withDir(async (dir) => {
    const store = new SqliteStore(opts(dir, { worker: false }));
    await store.open();
    const payload = new Uint8Array(4000).fill(7);
    for (let c = 0; c < 20; c++) {
      store.saveSession(session(`c${c}`, { expiryInterval: 1, disconnectedAt: 0 }));
      for (let i = 0; i < 200; i++) {
        store.putOutbound(`c${c}`, entry(i, { message: message(`m${c}-${i}`, { payload }) }));
      }
    }
    await store.flush();
    const pages = (db: DatabaseSync) =>
      (db.prepare("PRAGMA page_count").get() as { page_count: number }).page_count;
    let db = side(dir);
    const before = pages(db);
    db.close();
    assert.ok(before > 4000, `page_count ${before}`);
    assert.equal((await store.deleteExpiredSessions(10_000)).length, 20);
    db = side(dir);
    const after = pages(db);
    const free = (db.prepare("PRAGMA freelist_count").get() as { freelist_count: number })
      .freelist_count;
    db.close();
    assert.ok(after < before / 10, `page_count ${before} -> ${after}`);
    assert.ok(free < 1024, `freelist ${free}`);
    const wal = await Deno.stat(join(dir, "mqttwk.db-wal"));
    assert.ok(wal.size < 1024 * 1024, `wal ${wal.size}`);
    await store.close();
  });
});

Deno.test("sqlite: mutations and flush after close are refused", async () => {
  await withDir(async (dir) => {
    const store = new SqliteStore(opts(dir));
    await store.open();
    store.saveSession(session("a"));
    await store.close();
    assert.throws(() => store.saveSession(session("b")), /closed/);
    await assert.rejects(store.flush(), /closed/);
    const again = new SqliteStore(opts(dir));
    await again.open();
    assert.deepEqual((await again.loadSessions()).map((l) => l.session.clientId), ["a"]);
    await again.close();
  });
});

Deno.test("a version 1 store gains the Subscription Identifiers column of queued deliveries and keeps its rows", async () => {
  await withDir(async (dir) => {
    const first = new SqliteStore(opts(dir, { worker: false }));
    await first.open();
    first.saveSession(session("a"));
    first.putOutbound("a", entry(1));
    await first.flush();
    await first.close();
    // What version 1 wrote: no sub_ids column.
    const db = side(dir);
    db.exec("ALTER TABLE outbound DROP COLUMN sub_ids");
    db.exec("UPDATE meta SET value = 1 WHERE key = 'version'");
    db.close();
    const again = new SqliteStore(opts(dir, { worker: false }));
    await again.open();
    again.putOutbound("a", entry(2, { subscriptionIds: [3, 9] }));
    await again.flush();
    assert.deepEqual((await again.loadSession("a"))?.outbound, [
      entry(1),
      entry(2, { subscriptionIds: [3, 9] }),
    ]);
    await again.close();
    const meta = side(dir);
    const v = meta.prepare("SELECT value FROM meta WHERE key = 'version'").get() as {
      value: number;
    };
    meta.close();
    assert.equal(Number(v.value), 2);
  });
});

Deno.test("sqlite worker: the worker's heap goes back to its live size once a retained churn is over", async () => {
  await withDir(async (dir) => {
    const store = new SqliteStore(opts(dir, { durability: "interval" }));
    await store.open();
    const used = () => store.memory().then((m) => m.thread.heapUsed);
    const start = await used();
    const payload = new Uint8Array(64).fill(0x61);
    const topics = Array.from({ length: 60_000 }, (_, i) => `churn/${i % 100}/${i}`);
    for (let round = 0; round < 2; round++) {
      for (const t of topics) store.setRetained(t, message(t, { topic: t, payload, retain: true }));
      await store.loadRetained(); // commits everything issued so far
      for (const t of topics) store.setRetained(t, null);
      assert.equal((await store.loadRetained()).length, 0);
    }
    // Each commit leaves its deserialized batch behind; an idle worker used to keep what V8 had
    // not collected on the way until its memory reducer, half a minute later. Polled slowly:
    // asking allocates in the worker too, and a busy worker is not collected.
    let now = await used();
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    await waitFor(async () => (now = await used()) < start + 4 * 2 ** 20, {
      what: "the worker's heap to be collected",
      detail: () => `${mib(now)} MiB used, ${mib(start)} MiB after open`,
      // Slower than the worker's 500 ms quiet check, so the asking alone never keeps it busy.
      interval: 1000,
      timeout: 15_000,
    });
    await store.close();
  });
});
