/**
 * A heap census of a broker subprocess started with `--inspect`: a V8 heap snapshot taken over
 * the inspector's WebSocket (after a full GC), summed by constructor name. Comparing two censuses
 * (before and after a fuzz) shows which objects the fuzz left behind, which RSS alone cannot.
 * Used by `deno task fuzz --heap`; never by the CI test (a snapshot of a big heap takes seconds).
 */

/** Live objects of one kind: how many and their own (shallow) bytes. */
export interface HeapRow {
  name: string;
  count: number;
  bytes: number;
}

/** The census of one snapshot, biggest kinds first. */
export interface HeapCensus {
  totalBytes: number;
  rows: HeapRow[];
}

/** The inspector's WebSocket address of the process listening at `host:port`. */
async function debuggerUrl(inspectPort: number): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${inspectPort}/json/list`);
  const list = await r.json() as { webSocketDebuggerUrl: string }[];
  if (!list[0]) throw new Error(`no inspector target on port ${inspectPort}`);
  return list[0].webSocketDebuggerUrl;
}

/** Takes a heap snapshot of the process whose inspector listens on `inspectPort`. */
export async function heapCensus(inspectPort: number): Promise<HeapCensus> {
  const ws = new WebSocket(await debuggerUrl(inspectPort));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const chunks: string[] = [];
  const pending = new Map<number, (v: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data as string);
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params.chunk);
    else if (m.id !== undefined) pending.get(m.id)?.(m);
  };
  let nextId = 1;
  const call = (method: string, params: unknown = {}) => {
    const id = nextId++;
    const done = new Promise((r) => pending.set(id, r));
    ws.send(JSON.stringify({ id, method, params }));
    return done;
  };
  try {
    await call("HeapProfiler.enable");
    await call("HeapProfiler.collectGarbage");
    await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  } finally {
    ws.close();
  }
  return summarise(JSON.parse(chunks.join("")));
}

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Sums a snapshot's nodes by kind: objects by constructor name, the rest by V8's node type. */
function summarise(s: Snapshot): HeapCensus {
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const stride = fields.length;
  const fType = fields.indexOf("type");
  const fName = fields.indexOf("name");
  const fSize = fields.indexOf("self_size");
  const by = new Map<string, HeapRow>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += stride) {
    const type = types[s.nodes[i + fType]];
    const size = s.nodes[i + fSize];
    total += size;
    const name = type === "object" || type === "closure"
      ? `${type === "closure" ? "fn " : ""}${s.strings[s.nodes[i + fName]]}`
      : `(${type})`;
    let row = by.get(name);
    if (!row) by.set(name, row = { name, count: 0, bytes: 0 });
    row.count++;
    row.bytes += size;
  }
  return { totalBytes: total, rows: [...by.values()].sort((a, b) => b.bytes - a.bytes) };
}

/** The kinds that grew most from `before` to `after`, as lines for the campaign's output. */
export function describeGrowth(before: HeapCensus, after: HeapCensus, top = 20): string {
  const old = new Map(before.rows.map((r) => [r.name, r]));
  const grown = after.rows.map((r) => ({
    name: r.name,
    count: r.count - (old.get(r.name)?.count ?? 0),
    bytes: r.bytes - (old.get(r.name)?.bytes ?? 0),
  })).sort((a, b) => b.bytes - a.bytes).slice(0, top);
  const mb = (n: number) => (n / 1048576).toFixed(1);
  return [
    `heap (live, after GC): ${mb(before.totalBytes)} MiB before, ${mb(after.totalBytes)} MiB after`,
    ...grown.map((g) => `  +${mb(g.bytes)} MiB  ${g.count} × ${g.name}`),
  ].join("\n");
}
