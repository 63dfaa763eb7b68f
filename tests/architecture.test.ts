/**
 * The layering of docs/architecture.md, checked from the source: the core and the codec stay
 * at the bottom, nothing imports in a circle, and files stay small enough to read.
 */
import assert from "node:assert/strict";
import { cycles, layerOf, readGraph } from "../scripts/imports.ts";

/** Another checkout to check instead (e.g. to see these tests fail on an older layout). */
const files = readGraph(Deno.env.get("MQTTWK_ARCH_REPO") || undefined);

/** What each inner layer may import besides itself. */
const ALLOWED: Record<string, string[]> = {
  codec: [],
  broker: ["codec", "log.ts"],
  "log.ts": [],
};

Deno.test("the core imports only the codec, the logger and itself; the codec only itself", () => {
  const wrong: string[] = [];
  for (const f of files) {
    const allowed = ALLOWED[layerOf(f.path)];
    if (!allowed) continue;
    for (const i of f.imports) {
      const to = layerOf(i);
      if (to !== layerOf(f.path) && !allowed.includes(to)) wrong.push(`${f.path} -> ${i}`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("nothing in src/ imports in a circle, type-only imports included", () => {
  assert.deepEqual(cycles(files), []);
  assert.ok(files.length > 50, `read ${files.length} files`);
});

Deno.test("no source file is longer than about 500 lines, the configuration key table aside", () => {
  const long = files.filter((f) => f.lines > 550 && f.path !== "src/config/schema.ts")
    .map((f) => `${f.path} (${f.lines})`);
  assert.deepEqual(long, []);
});

Deno.test("src/app/ is the composition root: nothing else in src/ imports it", () => {
  const wrong = files.filter((f) => layerOf(f.path) !== "app")
    .flatMap((f) => f.imports.filter((i) => layerOf(i) === "app").map((i) => `${f.path} -> ${i}`));
  assert.deepEqual(wrong, []);
});
