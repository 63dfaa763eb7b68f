/**
 * An unusable store file stops start-up with an error naming the file: the broker never starts
 * silently with an empty store over data it could not read.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EXTERNAL } from "../helpers/broker.ts";
import { DB_FILE } from "../helpers/durability_broker.ts";

const REPO_ROOT = new URL("../../", import.meta.url);

/** Runs main.ts on `dir` until it exits (killed after 15 s); returns its code and output. */
async function runBroker(dir: string): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "main.ts",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--persistence",
      "sqlite",
      "--data-dir",
      dir,
      "--mqttwk.broker.websocket-enabled=false",
      "--log-level",
      "debug",
    ],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(15_000),
  }).output();
  const td = new TextDecoder();
  return { code: out.code, output: td.decode(out.stdout) + td.decode(out.stderr) };
}

/**
 * Starts the broker over a file made by `prepare` and checks that it refuses to start, naming the
 * file. Returns how start-up changed the file ("" if not) and the journal files it left behind.
 */
async function expectRefused(
  prepare: (file: string) => Promise<void>,
): Promise<{ changed: string; leftovers: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-durability-bad-" });
  try {
    const file = `${dir}/${DB_FILE}`;
    await prepare(file);
    const before = await snapshot(file);
    const { code, output } = await runBroker(dir);
    assert.notEqual(code, 0, `the broker must not start over ${file}; output:\n${output}`);
    assert.doesNotMatch(output, /listening tcp/, "it started listening");
    assert.ok(output.includes(file), `the error must name ${file}; output:\n${output}`);
    const changed = difference(before, await snapshot(file));
    const leftovers: string[] = [];
    for (const extra of ["-wal", "-shm", "-journal"]) {
      if (await Deno.stat(file + extra).then(() => true, () => false)) leftovers.push(file + extra);
    }
    return { changed, leftovers };
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** The file's bytes (or "directory"), to check that start-up left it alone. */
async function snapshot(path: string): Promise<Uint8Array | "directory"> {
  const st = await Deno.stat(path);
  return st.isDirectory ? "directory" : await Deno.readFile(path);
}

/** A short description of how `after` differs from `before`, or "" when equal. */
function difference(before: Uint8Array | "directory", after: Uint8Array | "directory"): string {
  if (before === "directory" || after === "directory") {
    return before === after ? "" : `was ${before === "directory" ? "a directory" : "a file"}`;
  }
  const offsets: number[] = [];
  for (let i = 0; i < Math.max(before.length, after.length); i++) {
    if (before[i] !== after[i]) offsets.push(i);
  }
  if (offsets.length === 0) return "";
  const show = offsets.slice(0, 12).map((o) => `@${o}: ${before[o]} -> ${after[o]}`);
  return `${before.length} -> ${after.length} bytes, ${offsets.length} byte(s) changed (${
    show.join(", ")
  })`;
}

Deno.test({
  name: "a corrupt or foreign store file stops start-up with an error naming the file",
  ignore: EXTERNAL,
  async fn(t) {
    const untouched = (r: { changed: string; leftovers: string[] }) => {
      assert.equal(r.changed, "", `start-up modified the file it refused: ${r.changed}`);
      assert.deepEqual(r.leftovers, [], "start-up left journal files behind");
    };

    await t.step("garbage bytes", async () => {
      untouched(
        await expectRefused(async (file) => {
          const garbage = new Uint8Array(8192);
          for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
          garbage.set(new TextEncoder().encode("definitely not an SQLite database\n"));
          await Deno.writeFile(file, garbage);
        }),
      );
    });

    const foreign = (file: string) => {
      const db = new DatabaseSync(file);
      db.exec("CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT)");
      db.exec("INSERT INTO accounts (name) VALUES ('precious')");
      db.close();
      return Promise.resolve();
    };
    await t.step("an SQLite database that is not an MqttWk store", async () => {
      await expectRefused(foreign);
    });
    await t.step(
      "an SQLite database that is not an MqttWk store is refused without being modified",
      async () => untouched(await expectRefused(foreign)),
    );

    await t.step("a directory where the file should be", async () => {
      untouched(await expectRefused((file) => Deno.mkdir(file)));
    });
  },
});
