/**
 * The broker core's CPU per delivery, in-process: no sockets, no generator process, no scheduler
 * in between, so a change to a hot path shows as a few percent rather than drowning in the
 * +-20% that socket runs on a shared 2-core machine vary by. Clients are RawIo objects that
 * hand the core whole chunks of packets and scan what it writes back (subscribers answer each
 * QoS 1 PUBLISH with a PUBACK, in one chunk per write), under the same closed loop as
 * `deno task bench` (a window of deliveries outstanding, 64 unacknowledged QoS 1 per
 * publisher). QoS 1 runs use persistent sessions over the memory store, as the socket bench does;
 * the "-durable" ones make acks wait for the store, as the cluster and SQLite in sync mode do.
 *
 *   deno run -A bench/core_paths.ts [--rounds 5] [--deliveries 2000000] [--scenarios fanout-q1]
 *   MQTTWK_BENCH_BASELINE=/tmp/base deno run -A bench/core_paths.ts   # before/after, alternating
 *
 * Each round runs every scenario once per checkout, each in a fresh process, alternating which
 * goes first; the table gives the median ns of CPU (process user + system) per delivery and the
 * ratio of the medians, and the same for the bytes V8 allocated per delivery (from its
 * collections' reports, the same from run to run: what a change to allocation does shows exactly
 * while CPU time drowns in noise). It measures the core's own cost, not what a client sees:
 * socket writes, the transport and the event loop's I/O are not in it.
 */
import { parseArgs } from "node:util";
import { cpuUsage } from "node:process";
import { setImmediate } from "node:timers";
import { fmtNum, median, table } from "./stats.ts";

interface Shape {
  name: string;
  qos: 0 | 1;
  publishers: number;
  subscribers: number;
  /** Every subscriber on one topic (fan-out/fan-in) or each on its publisher's own (pairs). */
  pairs: boolean;
  /**
   * Acks wait for the store, as with the cluster or SQLite in sync mode (the default): QoS 1
   * deliveries to online sessions are then held unwritten (volatile.ts) rather than stored.
   */
  durable?: boolean;
  /**
   * The embedded SQLite store in sync mode, in a temporary directory, with the configuration's
   * default in-flight window (32): what `deno task start` runs. Implies `durable`.
   */
  sqlite?: boolean;
}

const SHAPES: Shape[] = [
  { name: "fanin-q1", qos: 1, publishers: 10, subscribers: 1, pairs: false },
  { name: "fanout-q1", qos: 1, publishers: 1, subscribers: 50, pairs: false },
  { name: "p2p-q1", qos: 1, publishers: 50, subscribers: 50, pairs: true },
  { name: "fanin-q0", qos: 0, publishers: 10, subscribers: 1, pairs: false },
  { name: "fanout-q0", qos: 0, publishers: 1, subscribers: 50, pairs: false },
  {
    name: "fanout-q1-durable",
    qos: 1,
    publishers: 1,
    subscribers: 50,
    pairs: false,
    durable: true,
  },
  { name: "p2p-q1-durable", qos: 1, publishers: 50, subscribers: 50, pairs: true, durable: true },
  // One subscriber behind a window of 32 in flight: most deliveries wait in its queue.
  { name: "fanin-q1-sqlite", qos: 1, publishers: 10, subscribers: 1, pairs: false, sqlite: true },
];
const WINDOW = 1024;
const MAX_UNACKED = 64;
const PAYLOAD = 16;

interface ChildResult {
  deliveries: number;
  cpuNs: number;
  wallNs: number;
  /**
   * Bytes V8 allocated per delivery (summed from its collections' reports): unlike CPU time,
   * the same from run to run, so a change to what the hot paths allocate shows exactly.
   */
  allocBytes?: number;
}

/** Runs one scenario in this process against the core of checkout `root`. */
async function runChild(root: string, shape: Shape, deliveries: number): Promise<ChildResult> {
  const { Broker } = await import(`${root}/src/broker/broker.ts`);
  const { defaultBrokerOptions } = await import(`${root}/src/broker/options.ts`);
  const { MemoryStore } = await import(`${root}/src/store/memory.ts`);
  const { SqliteStore } = await import(`${root}/src/store/sqlite.ts`);
  const { silentLogger } = await import(`${root}/src/log.ts`);
  const { encode } = await import(`${root}/src/codec/encoder.ts`);
  const dir = shape.sqlite ? await Deno.makeTempDir({ prefix: "mqttwk-core-paths-" }) : null;
  const broker = new Broker({
    store: dir !== null
      ? new SqliteStore({ dir, durability: "sync", commitIntervalMs: 5, logger: silentLogger })
      : new MemoryStore(),
    log: silentLogger,
    options: {
      ...defaultBrokerOptions,
      maxInflight: shape.sqlite ? 32 : 1000,
      maxQueuedMessages: 100_000,
      durable: shape.durable === true || shape.sqlite === true,
    },
  });
  await broker.start();

  let delivered = 0;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  /** A client of the core: what it is handed back is scanned, not decoded into objects. */
  class RawClient {
    sink: { onData(c: Uint8Array): void; onEnd(e?: Error): void } | null = null;
    connacked = false;
    subacked = false;
    unacked = 0;
    /** PUBACKs to send back (subscribers), as one chunk per turn. */
    acks: number[] = [];
    #rest: Uint8Array | null = null;
    start(sink: RawClient["sink"]) {
      this.sink = sink;
    }
    pause() {}
    resume() {}
    /** As plain TCP: a write that returned is done with its bytes (what is left is copied). */
    readonly returnsBytes = true;
    write(bytes: Uint8Array): undefined {
      this.#scan(bytes);
      return undefined;
    }
    #scan(chunk: Uint8Array) {
      let b = chunk;
      if (this.#rest) {
        const joined = new Uint8Array(this.#rest.length + chunk.length);
        joined.set(this.#rest);
        joined.set(chunk, this.#rest.length);
        b = joined;
        this.#rest = null;
      }
      let p = 0;
      while (p < b.length) {
        const start = p;
        if (p + 2 > b.length) break;
        const type = b[p] >> 4;
        let len = 0;
        let mul = 1;
        let q = p + 1;
        let complete = false;
        while (q < b.length) {
          const x = b[q++];
          len += (x & 0x7f) * mul;
          mul *= 128;
          if (x < 0x80) {
            complete = true;
            break;
          }
        }
        if (!complete || q + len > b.length) {
          this.#rest = b.slice(start);
          return;
        }
        if (type === 2) this.connacked = true;
        else if (type === 9) this.subacked = true;
        else if (type === 4) {
          this.unacked--;
          poke();
        } else if (type === 3) {
          delivered++;
          if (((b[p] >> 1) & 3) > 0) {
            const tl = (b[q] << 8) | b[q + 1];
            this.acks.push((b[q + 2 + tl] << 8) | b[q + 3 + tl]);
          }
          poke();
        }
        p = q + len;
      }
    }
  }

  const conn = (raw: RawClient, n: number) => ({
    readable: new ReadableStream<Uint8Array>(),
    writable: new WritableStream<Uint8Array>(),
    remoteAddress: `10.0.${n >> 8}.${n & 255}:1`,
    transport: "memory",
    raw,
    close() {
      raw.sink?.onEnd();
    },
  });
  const turn = () => new Promise<void>((r) => setImmediate(r));
  const until = async (ok: () => boolean) => {
    for (let i = 0; i < 10_000 && !ok(); i++) await turn();
    if (!ok()) throw new Error("core_paths: no answer from the core");
  };

  const clean = shape.qos === 0;
  const subs: RawClient[] = [];
  const pubs: RawClient[] = [];
  const topicOf = (i: number) => shape.pairs ? `core/p/${i}` : "core/all";
  let n = 0;
  const open = async (clientId: string) => {
    const c = new RawClient();
    broker.handleConnection(conn(c, n++));
    c.sink!.onData(
      encode({
        type: "connect",
        protocolName: "MQTT",
        protocolVersion: 4,
        clean,
        keepalive: 0,
        clientId,
      }, 4),
    );
    await until(() => c.connacked);
    return c;
  };
  for (let i = 0; i < shape.subscribers; i++) {
    const c = await open(`sub-${i}`);
    c.sink!.onData(
      encode({
        type: "subscribe",
        packetId: 1,
        subscriptions: [{ topic: topicOf(i), qos: shape.qos }],
      }, 4),
    );
    await until(() => c.subacked);
    subs.push(c);
  }
  for (let i = 0; i < shape.publishers; i++) pubs.push(await open(`pub-${i}`));
  const fanout = shape.pairs ? 1 : shape.subscribers;
  const payload = new Uint8Array(PAYLOAD).fill(120);
  // Each publisher's 64 PUBLISHes are encoded once; a chunk is a fresh copy of the first k with
  // their packet ids written in (the core may keep views into a chunk it was handed).
  const templates = pubs.map((_, i) => {
    const one = encode({
      type: "publish",
      topic: topicOf(i),
      payload,
      qos: shape.qos,
      retain: false,
      dup: false,
      packetId: shape.qos ? 1 : undefined,
    } as never, 4) as Uint8Array;
    const all = new Uint8Array(one.length * 64);
    for (let j = 0; j < 64; j++) all.set(one, j * one.length);
    return { all, size: one.length };
  });
  /** A chunk of `k` PUBLISHes for publisher `i`, packet ids from `pid`. */
  const chunk = (i: number, k: number, pid: number) => {
    const { all, size } = templates[i];
    const out = all.slice(0, k * size);
    if (shape.qos) {
      for (let j = 0; j < k; j++) {
        const id = ((pid + j) % 65535) + 1;
        out[j * size + size - PAYLOAD - 2] = id >> 8;
        out[j * size + size - PAYLOAD - 1] = id & 0xff;
      }
    }
    return out;
  };
  const pids = pubs.map(() => 0);
  const pubackChunk = (ids: number[]) => {
    const out = new Uint8Array(ids.length * 4);
    for (let j = 0; j < ids.length; j++) {
      out[j * 4] = 0x40;
      out[j * 4 + 1] = 2;
      out[j * 4 + 2] = ids[j] >> 8;
      out[j * 4 + 3] = ids[j] & 0xff;
    }
    return out;
  };

  let sent = 0;
  const drive = async (target: number) => {
    const end = delivered + target;
    while (delivered < end) {
      let moved = false;
      for (let i = 0; i < pubs.length; i++) {
        const p = pubs[i];
        let k = Math.min(64, Math.floor((WINDOW - (sent * fanout - delivered)) / fanout));
        if (shape.qos) k = Math.min(k, MAX_UNACKED - p.unacked);
        if (k <= 0) continue;
        p.sink!.onData(chunk(i, k, pids[i]));
        pids[i] += k;
        sent += k;
        if (shape.qos) p.unacked += k;
        moved = true;
      }
      for (const s of subs) {
        if (s.acks.length === 0) continue;
        const ids = s.acks;
        s.acks = [];
        s.sink!.onData(pubackChunk(ids));
        moved = true;
      }
      if (!moved) await new Promise<void>((r) => wake = r);
      else await turn();
    }
  };
  await drive(Math.min(200_000, deliveries / 5)); // warm-up: optimized code, grown tables
  const c0 = cpuUsage();
  const w0 = performance.now();
  const d0 = delivered;
  await drive(deliveries);
  const c1 = cpuUsage(c0);
  const wall = performance.now() - w0;
  const d = delivered - d0;
  for (const c of [...subs, ...pubs]) c.sink!.onEnd();
  await broker.close();
  if (dir !== null) await Deno.remove(dir, { recursive: true });
  return { deliveries: d, cpuNs: ((c1.user + c1.system) * 1000) / d, wallNs: (wall * 1e6) / d };
}

async function runInChild(root: string, shape: string, deliveries: number): Promise<ChildResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      "--v8-flags=--max-semi-space-size=4,--trace-gc-nvp",
      import.meta.filename!,
      "--child",
      root,
      "--scenarios",
      shape,
      "--deliveries",
      String(deliveries),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(
      `core_paths child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`,
    );
  }
  // V8's collection reports (--trace-gc-nvp) share stdout with the result line.
  const line = [...text.matchAll(/\{"deliveries":[^}]*\}/g)].pop();
  if (line === undefined) {
    throw new Error(`core_paths child printed no result: ${text.slice(-500)}`);
  }
  const r: ChildResult = JSON.parse(line[0]);
  let allocated = 0;
  for (const m of text.matchAll(/"allocated":(\d+)/g)) allocated += Number(m[1]);
  r.allocBytes = allocated / r.deliveries;
  return r;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      deliveries: { type: "string", default: "1000000" },
      scenarios: { type: "string", default: SHAPES.map((s) => s.name).join(",") },
      child: { type: "string" },
    },
  });
  const deliveries = Number(values.deliveries);
  const wanted = values.scenarios!.split(",");
  const shapes = SHAPES.filter((s) => wanted.includes(s.name));
  if (values.child) {
    const r = await runChild(values.child, shapes[0], deliveries);
    console.log(JSON.stringify(r));
    Deno.exit(0);
  }
  const here = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const base = Deno.env.get("MQTTWK_BENCH_BASELINE")?.replace(/\/$/, "");
  const roots: [string, string][] = [
    ["this checkout", here],
    ...(base ? [["baseline", base] as [string, string]] : []),
  ];
  const results = new Map<string, number[]>();
  const allocs = new Map<string, number[]>();
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const s of shapes) {
      const order = round % 2 ? roots : [...roots].reverse();
      for (const [label, root] of order) {
        const r = await runInChild(root, s.name, deliveries);
        const key = `${s.name}|${label}`;
        results.set(key, [...(results.get(key) ?? []), r.cpuNs]);
        allocs.set(key, [...(allocs.get(key) ?? []), r.allocBytes ?? NaN]);
        console.error(
          `[${round}] ${s.name} ${label}: ${r.cpuNs.toFixed(0)} ns CPU, ${
            r.wallNs.toFixed(0)
          } ns wall, ${r.allocBytes?.toFixed(0)} B allocated per delivery`,
        );
      }
    }
  }
  const rows = (of: Map<string, number[]>) =>
    shapes.map((s) => {
      const mine = median(of.get(`${s.name}|this checkout`)!);
      const theirs = base ? median(of.get(`${s.name}|baseline`)!) : NaN;
      return [
        s.name,
        fmtNum(mine),
        base ? fmtNum(theirs) : "-",
        base ? (mine / theirs).toFixed(3) : "-",
      ];
    });
  const head = ["scenario", "this checkout", "baseline", "this/baseline"];
  console.log("\nCore CPU per delivery (ns, median of rounds; in-process, no sockets)");
  console.log(table(head, rows(results)));
  console.log("\nBytes allocated per delivery (median of rounds; V8's collections' reports)");
  console.log(table(head, rows(allocs)));
}
