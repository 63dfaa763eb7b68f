/**
 * Docker build step: rewrites deno.json so that its import map holds only the packages the given
 * entry points import (their whole module graph, via `deno info`), so that `deno install` puts
 * the broker's npm packages in the image and leaves the test-only ones (mqtt, playwright-core and
 * their @types) out. Computed, not listed by hand, so a new runtime import cannot be forgotten.
 *
 * Usage (in the build stage): deno run --allow-read --allow-write --allow-run --allow-env \
 *   scripts/docker/runtime_config.ts main.ts src/store/sqlite_worker.ts ...
 */

interface GraphModule {
  specifier: string;
  dependencies?: { specifier: string }[];
}

/** The import specifiers written in the entry points' local modules, as written. */
async function importedSpecifiers(entry: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--node-modules-dir=none", entry],
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno info ${entry} failed`);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
  const found = new Set<string>();
  for (const m of graph.modules) {
    if (!m.specifier.startsWith("file:")) continue;
    for (const d of m.dependencies ?? []) found.add(d.specifier);
  }
  return found;
}

/** The import map keys that `specifiers` use: exact, or as a prefix ("pkg/sub" uses "pkg"). */
export function usedKeys(imports: Record<string, string>, specifiers: Set<string>): string[] {
  return Object.keys(imports).filter((key) =>
    [...specifiers].some((s) =>
      s === key || (key.endsWith("/") && s.startsWith(key)) ||
      s.startsWith(`${key}/`)
    )
  );
}

if (import.meta.main) {
  if (Deno.args.length === 0) throw new Error("give the entry points");
  const config = JSON.parse(await Deno.readTextFile("deno.json"));
  const specifiers = new Set<string>();
  for (const entry of Deno.args) {
    for (const s of await importedSpecifiers(entry)) specifiers.add(s);
  }
  const imports: Record<string, string> = config.imports ?? {};
  const keep = usedKeys(imports, specifiers);
  config.imports = Object.fromEntries(keep.map((k) => [k, imports[k]]));
  await Deno.writeTextFile("deno.json", JSON.stringify(config, null, 2) + "\n");
  const dropped = Object.keys(imports).filter((k) => !keep.includes(k));
  console.log(`runtime imports: ${keep.join(", ")}; left out: ${dropped.join(", ") || "none"}`);
}
