/**
 * What publishing through the HTTP API costs against publishing over MQTT, on one broker
 * subprocess (memory store, loopback): QoS 1 messages per second from one sequential caller
 * (each waits for its answer: HTTP 200 or PUBACK) and from 8 concurrent callers, plus GET
 * /api/v1/status per second. Rounds alternate HTTP and MQTT; medians and HTTP/MQTT ratios printed.
 * The HTTP side uses a minimal keep-alive client over one socket per caller (Deno's fetch costs
 * about 4 ms per request here by itself, which would measure fetch, not the broker).
 *
 *   deno run -A bench/http_api.ts [--rounds 3] [--duration 2]
 */
import mqtt from "mqtt";

const args = Deno.args;
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const ROUNDS = opt("rounds", 3);
const DURATION_MS = opt("duration", 2) * 1000;
/** Upper bound on messages per run, whatever the speed. */
const MAX_PER_RUN = 200_000;

async function startBroker() {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "main.ts",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--persistence",
      "memory",
      "--mqttwk.broker.websocket-enabled=false",
      "--mqttwk.broker.http-enabled=true",
      "--server.port=0",
      "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
      "--log-level=info",
    ],
    cwd: new URL("../", import.meta.url),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) text += dec.decode(c);
  };
  pump(child.stdout);
  pump(child.stderr);
  const end = Date.now() + 20_000;
  while (!/listening http \S+:(\d+)/.test(text) || !/listening tcp \S+:(\d+)/.test(text)) {
    if (Date.now() > end) throw new Error(`broker did not start:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    http: Number(/listening http \S+:(\d+)/.exec(text)![1]),
    mqtt: Number(/listening tcp \S+:(\d+)/.exec(text)![1]),
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/**
 * Runs `one` from `callers` loops until the window ends (each loop passes its own index, so it
 * has a connection to itself); returns calls per second.
 */
async function measure(callers: number, one: (caller: number) => Promise<void>): Promise<number> {
  let n = 0;
  const end = Date.now() + DURATION_MS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      while (Date.now() < end && n < MAX_PER_RUN) {
        n++;
        await one(caller);
      }
    }),
  );
  return n / ((performance.now() - start) / 1000);
}

/** One keep-alive HTTP/1.1 connection: a request written in one piece, its answer read whole. */
async function rawHttp(port: number) {
  const open = async () => {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.setNoDelay(true);
    return c;
  };
  let conn = await open();
  const enc = new TextEncoder();
  const buf = new Uint8Array(65536);
  return {
    async request(method: string, path: string, body = ""): Promise<number> {
      const b = enc.encode(body);
      const head = enc.encode(`${method} ${path} HTTP/1.1\r\ncontent-length: ${b.length}\r\n\r\n`);
      const out = new Uint8Array(head.length + b.length);
      out.set(head);
      out.set(b, head.length);
      await conn.write(out);
      let text = "";
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("connection closed");
        text += new TextDecoder().decode(buf.subarray(0, n));
        const end = text.indexOf("\r\n\r\n");
        if (end < 0) continue;
        const len = Number(/content-length: (\d+)/i.exec(text.slice(0, end))?.[1] ?? 0);
        if (text.length < end + 4 + len) continue;
        // The server ends a connection after a number of requests: a new one for the next.
        if (/\r\nconnection: close/i.test(text.slice(0, end))) {
          conn.close();
          conn = await open();
        }
        return Number(text.slice(9, 12));
      }
    },
    close: () => conn.close(),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const b = await startBroker();
try {
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqtt}`, { reconnectPeriod: 0 });
  await sub.subscribeAsync("bench/#", { qos: 1 });
  const pubs = await Promise.all(
    Array.from(
      { length: 8 },
      () => mqtt.connectAsync(`mqtt://127.0.0.1:${b.mqtt}`, { reconnectPeriod: 0 }),
    ),
  );
  const body = JSON.stringify({ topic: "bench/http", payload: "x".repeat(16), qos: 1 });
  const https = await Promise.all(Array.from({ length: 8 }, () => rawHttp(b.http)));
  const httpPublish = async (i: number, callers: number) => {
    const status = await https[i].request("POST", "/api/v1/publish", body);
    if (status !== 200) throw new Error(`publish answered ${status}`);
  };
  const results: Record<string, number[]> = {};
  const put = (k: string, v: number) => (results[k] ??= []).push(v);
  for (let round = 0; round < ROUNDS; round++) {
    for (const callers of [1, 8]) {
      // Alternate which goes first, so drift on a shared machine falls on both.
      const order = round % 2 === 0 ? ["http", "mqtt"] : ["mqtt", "http"];
      for (const kind of order) {
        const rate = kind === "http"
          ? await measure(callers, (i) => httpPublish(i, callers))
          : await measure(callers, async (i) => {
            await pubs[i].publishAsync("bench/mqtt", "x".repeat(16), { qos: 1 });
          });
        put(`${kind} publish QoS 1, ${callers} caller(s)`, rate);
      }
    }
    put(
      "http GET /api/v1/status, 8 callers",
      await measure(8, async (i) => void (await https[i].request("GET", "/api/v1/status"))),
    );
  }
  console.log(`rounds ${ROUNDS}, ${DURATION_MS / 1000} s each; medians (calls/s):`);
  for (const [k, v] of Object.entries(results)) {
    console.log(`  ${k.padEnd(40)} ${median(v).toFixed(0).padStart(8)}`);
  }
  for (const callers of [1, 8]) {
    const h = median(results[`http publish QoS 1, ${callers} caller(s)`]);
    const m = median(results[`mqtt publish QoS 1, ${callers} caller(s)`]);
    console.log(`  HTTP/MQTT QoS 1 publish rate, ${callers} caller(s): ${(h / m).toFixed(2)}`);
  }
  await sub.endAsync();
  await Promise.all(pubs.map((p) => p.endAsync()));
  for (const h of https) h.close();
} finally {
  await b.stop();
}
