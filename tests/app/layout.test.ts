/** src/app/ is the composition root: it may use every module, and only main.ts may use it. */
import assert from "node:assert/strict";

const SRC = new URL("../../src/", import.meta.url);

function sources(dir: URL, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) out.push(...sources(new URL(`${e.name}/`, dir), `${prefix}${e.name}/`));
    else if (e.name.endsWith(".ts")) out.push(`${prefix}${e.name}`);
  }
  return out;
}

Deno.test("no module under src/ outside src/app/ imports src/app/", () => {
  const offenders = sources(SRC)
    .filter((f) => !f.startsWith("app/"))
    .filter((f) =>
      /from\s+["'](\.\.\/)+app\/|import\(["'](\.\.\/)+app\//.test(
        Deno.readTextFileSync(new URL(f, SRC)),
      )
    );
  assert.deepEqual(offenders, []);
});
