/**
 * The import graph of src/, read from the source text (static imports and re-exports, type-only
 * ones included): which folder imports which, and any file cycle.
 *
 *   deno run --allow-read scripts/imports.ts          # folder graph and cycles
 *   deno run --allow-read scripts/imports.ts --files  # every file's imports
 *   deno run --allow-read scripts/imports.ts --repo /other/checkout
 */

/** One source file and the src files it imports. */
export interface SourceFile {
  path: string;
  lines: number;
  imports: string[];
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+)"/g;

const REPO_ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/**
 * Reads every .ts file under `repo`/src (default: this checkout) with its relative imports
 * resolved; paths start with "src/".
 */
export function readGraph(repo = REPO_ROOT): SourceFile[] {
  const files: SourceFile[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(`${repo}/${dir}`)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) walk(p);
      else if (e.name.endsWith(".ts")) {
        const text = Deno.readTextFileSync(`${repo}/${p}`);
        const imports = [...text.matchAll(IMPORT)].map((m) => resolve(p, m[1]));
        files.push({ path: p, lines: text.split("\n").length - 1, imports });
      }
    }
  };
  walk("src");
  return files.sort((a, b) => a.path.localeCompare(b.path));
}

function resolve(from: string, spec: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const seg of spec.split("/")) {
    if (seg === "..") parts.pop();
    else if (seg !== ".") parts.push(seg);
  }
  return parts.join("/");
}

/** The layer of a file: its folder under src/ (`src/log.ts` is its own). */
export function layerOf(path: string): string {
  const rest = path.replace(/^src\//, "");
  const i = rest.indexOf("/");
  return i < 0 ? rest : rest.slice(0, i);
}

/** Every cycle among files, each as the list of files on it (empty when there is none). */
export function cycles(files: SourceFile[]): string[][] {
  const graph = new Map(files.map((f) => [f.path, f.imports]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  // Tarjan's strongly connected components: any component of more than one file is a cycle.
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const f of files) if (!index.has(f.path)) visit(f.path);
  return out;
}

if (import.meta.main) {
  const at = Deno.args.indexOf("--repo");
  const files = readGraph(at >= 0 ? Deno.args[at + 1] : undefined);
  if (Deno.args.includes("--files")) {
    for (const f of files) console.log(`${f.path} (${f.lines}) -> ${f.imports.join(", ")}`);
  } else {
    const edges = new Map<string, Set<string>>();
    for (const f of files) {
      const from = layerOf(f.path);
      for (const i of f.imports) {
        const to = layerOf(i);
        if (to !== from) (edges.get(from) ?? edges.set(from, new Set()).get(from)!).add(to);
      }
    }
    for (const [from, tos] of [...edges].sort()) {
      console.log(`${from} -> ${[...tos].sort().join(", ")}`);
    }
  }
  const found = cycles(files);
  console.log(
    found.length ? `cycles:\n${found.map((c) => "  " + c.join(" -> ")).join("\n")}` : "no cycles",
  );
}
