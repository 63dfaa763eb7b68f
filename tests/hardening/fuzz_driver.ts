/**
 * The fuzzer's sending side: each generated sequence goes over its own connection (TCP, or
 * WebSocket with its own framing mutations), then the client half-closes and reads until the
 * broker closes. Every connection must end in a clean answer (well-formed MQTT, or an HTTP
 * refusal, or WebSocket frames carrying well-formed MQTT) followed by a close, or in a close
 * alone; a connection the broker leaves open, or an answer that is not well-formed, is a
 * failure reported with its seed and index.
 *
 * Run as a program it prints progress on stderr and one `FUZZ-RESULT {json}` line on stdout;
 * the campaign (campaign.ts) runs it as a separate process so that its work does not slow the
 * well-behaved client whose round trips are measured.
 *
 *   deno run -A tests/hardening/fuzz_driver.ts --port P [--ws-port W] --seed S \
 *     --tcp-count N --ws-count M [--concurrency C] [--rate R]
 *   deno run -A tests/hardening/fuzz_driver.ts --port P --seed S --replay INDEX [--ws]
 */
import { parseArgs } from "node:util";
import { generate, type Rng, type Sequence, transportRng } from "./fuzz_gen.ts";
import { clientFrame, ServerStream, upgradeRequest } from "./ws_wire.ts";

/** Where and how much to fuzz. */
export interface DriverOptions {
  host: string;
  port: number;
  wsPort?: number;
  wsPath?: string;
  seed: number;
  /** Sequences over TCP: indices [0, tcpCount). */
  tcpCount: number;
  /** Sequences over WebSocket: indices [tcpCount, tcpCount + wsCount). */
  wsCount: number;
  /** Connections in flight at once. */
  concurrency: number;
  /** Most sequences started per second; 0 = as fast as the connections allow. */
  rate: number;
  /** A connection the broker has not closed this long after the client's FIN is a failure. */
  hangMs: number;
  /** Called every few seconds with the counts so far. */
  progress?: (r: DriverResult) => void;
}

/** How one connection ended. */
export type Outcome = "answered" | "closed" | "refused-http" | "hung" | "malformed" | "no-connect";

/** A failing sequence, enough to replay it. */
export interface Failure {
  seed: number;
  index: number;
  transport: "tcp" | "ws";
  outcome: Outcome;
  why: string;
  mutations: string[];
}

/** What a run did. */
export interface DriverResult {
  seed: number;
  tcp: number;
  ws: number;
  bytesSent: number;
  outcomes: Record<Outcome, number>;
  failures: Failure[];
  /** Failures beyond those kept in `failures`. */
  failureCount: number;
  durationMs: number;
}

const FAILURES_KEPT = 20;

/** Whether `bytes` is a run of whole, well-formed packets a server may send (CONNACK first). */
export function checkServerBytes(bytes: Uint8Array): string | undefined {
  let at = 0;
  let first = true;
  while (at < bytes.length) {
    const type = bytes[at] >> 4;
    const flags = bytes[at] & 0x0f;
    if (first && type !== 2) return `first packet is type ${type}, not CONNACK`;
    first = false;
    if (![2, 3, 4, 5, 6, 7, 9, 11, 13, 14, 15].includes(type)) {
      return `a server never sends packet type ${type}`;
    }
    if (type === 6 ? flags !== 2 : type !== 3 && flags !== 0) {
      return `bad flags ${flags} for type ${type} at ${at}`;
    }
    if (type === 3 && ((flags >> 1) & 3) === 3) return `PUBLISH with QoS 3 at ${at}`;
    let len = 0;
    let mult = 1;
    let i = at + 1;
    for (;;) {
      if (i >= bytes.length) return `partial header at ${at} when the connection closed`;
      const b = bytes[i++];
      len += (b & 0x7f) * mult;
      mult *= 128;
      if (!(b & 0x80)) break;
      if (i - at > 4) return `remaining length over 4 bytes at ${at}`;
    }
    if (i + len > bytes.length) return `partial packet at ${at} when the connection closed`;
    at = i + len;
  }
  return undefined;
}

interface Wire {
  /** The writes, in order. */
  chunks: Uint8Array[];
  /** For WebSocket: whether the handshake was left valid. */
  validUpgrade: boolean;
  notes: string[];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Wraps a sequence's bytes in a WebSocket handshake and frames, mutated now and then. */
function wsWire(seq: Sequence, rng: Rng, path: string): Wire {
  const notes: string[] = [];
  let validUpgrade = true;
  let head = upgradeRequest(path);
  const h = rng.int(100);
  if (h < 2) {
    head = upgradeRequest(path, { "sec-websocket-key": "short" });
    notes.push("bad-key");
    validUpgrade = false;
  } else if (h < 4) {
    head = upgradeRequest(path, { "sec-websocket-version": "8" });
    notes.push("version-8");
    validUpgrade = false;
  } else if (h < 6) {
    head = head.slice();
    const pos = rng.int(head.length);
    head[pos] ^= 1 << rng.int(8);
    notes.push(`upgrade-bitflip@${pos}`);
    validUpgrade = false;
  } else if (h < 7) {
    head = head.slice(0, rng.int(head.length));
    notes.push("upgrade-truncated");
    validUpgrade = false;
  }
  const mqtt = concat(seq.chunks);
  const frames: Uint8Array[] = [head];
  let at = 0;
  let fragmenting = false;
  const mask = rng.bytes(4);
  while (at < mqtt.length) {
    const n = rng.range(1, Math.max(1, mqtt.length - at));
    const piece = mqtt.subarray(at, at + n);
    at += n;
    const last = at >= mqtt.length;
    const fin = last || !rng.chance(0.2);
    const opcode = fragmenting ? 0x0 : 0x2;
    fragmenting = !fin;
    if (rng.chance(0.05)) frames.push(clientFrame(0x9, rng.bytes(rng.int(10)), { mask }));
    const r = rng.int(100);
    if (r < 1) {
      frames.push(clientFrame(opcode, piece, { fin, masked: false }));
      notes.push("unmasked");
    } else if (r < 2) {
      frames.push(clientFrame(0x1, piece, { fin, mask }));
      notes.push("text");
    } else if (r < 3) {
      frames.push(clientFrame(rng.pick([0x3, 0xb, 0x7]), piece, { fin, mask }));
      notes.push("reserved-opcode");
    } else if (r < 4) {
      frames.push(
        clientFrame(opcode, piece, {
          fin,
          mask,
          announce: rng.pick([2 ** 20 + 1, 60 * 2 ** 20, 2 ** 32]),
        }),
      );
      notes.push("oversize");
    } else if (r < 5) {
      const f = clientFrame(opcode, piece, { fin, mask });
      f[0] |= 0x40;
      frames.push(f);
      notes.push("rsv1");
    } else {
      frames.push(clientFrame(opcode, piece, { fin, mask }));
    }
  }
  if (rng.chance(0.3)) {
    frames.push(clientFrame(0x8, Uint8Array.of(0x03, 0xe8), { mask }));
    notes.push("close");
  }
  // The handshake sometimes shares a write with the first frames, sometimes goes alone.
  const bytes = concat(frames);
  const chunks: Uint8Array[] = [];
  let pos = 0;
  if (rng.chance(0.5)) {
    chunks.push(bytes.subarray(0, head.length));
    pos = head.length;
  }
  while (pos < bytes.length) {
    const n = rng.chance(0.5) ? bytes.length - pos : rng.range(1, bytes.length - pos);
    chunks.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return { chunks, validUpgrade, notes };
}

async function writeAll(conn: Deno.Conn, b: Uint8Array): Promise<void> {
  let at = 0;
  while (at < b.length) at += await conn.write(b.subarray(at));
}

/** What one connection produced. */
interface Exchange {
  outcome: Outcome;
  why: string;
  sent: number;
  received: Uint8Array;
}

/** Sends `chunks` on a new connection, half-closes, and collects the answer until the close. */
async function exchange(
  host: string,
  port: number,
  chunks: Uint8Array[],
  hangMs: number,
): Promise<{ ok: boolean; hung: boolean; sent: number; received: Uint8Array }> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host, port });
  } catch {
    return { ok: false, hung: false, sent: 0, received: new Uint8Array(0) };
  }
  conn.setNoDelay(true);
  const parts: Uint8Array[] = [];
  let hung = false;
  let closed = false;
  const timer = setTimeout(() => {
    hung = true;
    if (!closed) {
      closed = true;
      conn.close();
    }
  }, hangMs);
  const reading = (async () => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        parts.push(buf.slice(0, n));
      }
    } catch {
      // A reset is the broker closing on bytes it did not read: still a close.
    }
  })();
  let sent = 0;
  try {
    for (const c of chunks) {
      await writeAll(conn, c);
      sent += c.length;
    }
    await conn.closeWrite();
  } catch {
    // The broker closed first (it refused what it read so far).
  }
  await reading;
  clearTimeout(timer);
  if (!closed) {
    closed = true;
    conn.close();
  }
  return { ok: true, hung, sent, received: concat(parts) };
}

async function runTcp(o: DriverOptions, seq: Sequence): Promise<Exchange> {
  const r = await exchange(o.host, o.port, seq.chunks, o.hangMs);
  if (!r.ok) {
    return { outcome: "no-connect", why: "connection refused", sent: 0, received: r.received };
  }
  if (r.hung) {
    return {
      outcome: "hung",
      why: `still open ${o.hangMs} ms after the client's FIN (${r.received.length} bytes answered)`,
      sent: r.sent,
      received: r.received,
    };
  }
  const bad = checkServerBytes(r.received);
  if (bad) return { outcome: "malformed", why: bad, sent: r.sent, received: r.received };
  return {
    outcome: r.received.length > 0 ? "answered" : "closed",
    why: "",
    sent: r.sent,
    received: r.received,
  };
}

async function runWs(
  o: DriverOptions,
  seq: Sequence,
  rng: Rng,
): Promise<Exchange & { notes: string[] }> {
  const wire = wsWire(seq, rng, o.wsPath ?? "/mqtt");
  const r = await exchange(o.host, o.wsPort!, wire.chunks, o.hangMs);
  const base = { sent: r.sent, received: r.received, notes: wire.notes };
  if (!r.ok) return { ...base, outcome: "no-connect", why: "connection refused" };
  if (r.hung) {
    return {
      ...base,
      outcome: "hung",
      why: `still open ${o.hangMs} ms after the client's FIN (${r.received.length} bytes answered)`,
    };
  }
  if (r.received.length === 0) return { ...base, outcome: "closed", why: "" };
  const s = new ServerStream();
  s.push(r.received);
  if (s.status === undefined) {
    return { ...base, outcome: "malformed", why: "bytes that are not an HTTP answer" };
  }
  if (s.malformed) return { ...base, outcome: "malformed", why: s.malformed };
  if (s.status !== 101) {
    if (s.status < 400) return { ...base, outcome: "malformed", why: `HTTP ${s.status}` };
    if (wire.validUpgrade) {
      return { ...base, outcome: "malformed", why: `a valid upgrade refused: HTTP ${s.status}` };
    }
    return { ...base, outcome: "refused-http", why: "" };
  }
  if (s.pending > 0) {
    return { ...base, outcome: "malformed", why: `partial frame (${s.pending} bytes) at close` };
  }
  const bad = checkServerBytes(s.binary());
  if (bad) return { ...base, outcome: "malformed", why: bad };
  return { ...base, outcome: "answered", why: "" };
}

/** Runs the sequences of `o` and reports what happened. */
export async function runDriver(o: DriverOptions): Promise<DriverResult> {
  const result: DriverResult = {
    seed: o.seed,
    tcp: 0,
    ws: 0,
    bytesSent: 0,
    outcomes: { answered: 0, closed: 0, "refused-http": 0, hung: 0, malformed: 0, "no-connect": 0 },
    failures: [],
    failureCount: 0,
    durationMs: 0,
  };
  const total = o.tcpCount + o.wsCount;
  const start = performance.now();
  let origin = start;
  let next = 0;
  const record = (
    index: number,
    transport: "tcp" | "ws",
    seq: Sequence,
    x: Exchange,
    notes: string[] = [],
  ) => {
    result[transport]++;
    result.bytesSent += x.sent;
    result.outcomes[x.outcome]++;
    if (x.outcome === "hung" || x.outcome === "malformed" || x.outcome === "no-connect") {
      result.failureCount++;
      if (result.failures.length < FAILURES_KEPT) {
        result.failures.push({
          seed: o.seed,
          index,
          transport,
          outcome: x.outcome,
          why: x.why,
          mutations: [...seq.mutations, ...notes],
        });
      }
    }
  };
  const worker = async () => {
    for (;;) {
      const index = next++;
      if (index >= total) return;
      if (o.rate > 0) {
        // Pacing, not waiting for an event: the rate bound keeps the broker busy but leaves the
        // good client's round trips measurable.
        const due = origin + (index / o.rate) * 1000;
        const wait = due - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        // Fallen behind (the fuzzer starved of CPU): move the schedule rather than catch up in
        // a burst at full speed, which would break the rate bound.
        else if (wait < -1000) origin -= wait + 1000;
      }
      const seq = generate(o.seed, index);
      if (index < o.tcpCount) {
        record(index, "tcp", seq, await runTcp(o, seq));
      } else {
        const x = await runWs(o, seq, transportRng(o.seed, index));
        record(index, "ws", seq, x, x.notes);
      }
    }
  };
  const progress = o.progress && setInterval(() => {
    result.durationMs = performance.now() - start;
    o.progress!(result);
  }, 5_000);
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  if (progress) clearInterval(progress);
  result.durationMs = performance.now() - start;
  return result;
}

/** Prints one sequence as sent (hex per write) and what the broker answered, for a replay. */
export async function replay(o: DriverOptions, index: number, ws: boolean): Promise<void> {
  const seq = generate(o.seed, index);
  const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  console.log(`seed ${o.seed} index ${index} version ${seq.version} mutations ${seq.mutations}`);
  for (const c of seq.chunks) console.log(`write ${hex(c)}`);
  const x = ws ? await runWs(o, seq, transportRng(o.seed, index)) : await runTcp(o, seq);
  console.log(`outcome ${x.outcome} ${x.why}`);
  console.log(`answer ${hex(x.received)}`);
}

if (import.meta.main) {
  const { values: a } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      "ws-port": { type: "string" },
      "ws-path": { type: "string", default: "/mqtt" },
      seed: { type: "string", default: "1" },
      "tcp-count": { type: "string", default: "1000" },
      "ws-count": { type: "string", default: "0" },
      concurrency: { type: "string", default: "64" },
      rate: { type: "string", default: "0" },
      "hang-ms": { type: "string", default: "10000" },
      replay: { type: "string" },
      ws: { type: "boolean", default: false },
    },
  });
  const o: DriverOptions = {
    host: a.host!,
    port: Number(a.port),
    ...(a["ws-port"] ? { wsPort: Number(a["ws-port"]) } : {}),
    wsPath: a["ws-path"]!,
    seed: Number(a.seed),
    tcpCount: Number(a["tcp-count"]),
    wsCount: Number(a["ws-count"]),
    concurrency: Number(a.concurrency),
    rate: Number(a.rate),
    hangMs: Number(a["hang-ms"]),
    progress: (r) =>
      console.error(
        `fuzz: ${r.tcp} tcp + ${r.ws} ws in ${(r.durationMs / 1000).toFixed(0)} s, ` +
          `${r.failureCount} failures`,
      ),
  };
  if (a.replay !== undefined) {
    await replay(o, Number(a.replay), a.ws!);
  } else {
    const r = await runDriver(o);
    console.log(`FUZZ-RESULT ${JSON.stringify(r)}`);
  }
}
