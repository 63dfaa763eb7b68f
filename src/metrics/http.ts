/**
 * Read-only management endpoint: `/metrics` in the Prometheus text format and `/health` as JSON
 * (200 when healthy, 503 when degraded, e.g. the cluster has lost Redis or Kafka is down).
 * It exposes counters only, no control: the original's unauthenticated HTTP API that could
 * publish is deliberately not re-created.
 */
import type { Broker } from "../broker/broker.ts";
import type { Logger } from "../log.ts";
import type { ByteConnection, RawIo } from "../broker/ports/connection.ts";
import type { Front, Guard } from "../transport/listening.ts";
import { listenTcp } from "../transport/tcp.ts";
import { type RequestHead, RequestHeadParser } from "../transport/ws_handshake.ts";

export interface HealthSource {
  /** Short name for /health, e.g. "cluster" or "kafka". */
  name: string;
  healthy(): boolean;
  /** Why it is degraded (shown by /health), or null. */
  reason?(): string | null;
  /** Extra gauges and counters, metric name (without the mqttwk_ prefix) to value. */
  metrics(): Record<string, number>;
}

export function metricsText(broker: Broker, sources: HealthSource[]): string {
  const s = broker.stats;
  const lines: string[] = [];
  const put = (name: string, type: "gauge" | "counter", value: number, help: string) => {
    lines.push(`# HELP mqttwk_${name} ${help}`, `# TYPE mqttwk_${name} ${type}`);
    lines.push(`mqttwk_${name} ${Number.isFinite(value) ? value : 0}`);
  };
  put("connections", "gauge", s.connections, "Open client connections.");
  put("sessions", "gauge", s.sessions, "Sessions held by this node (connected or offline).");
  put("subscriptions", "gauge", s.subscriptions, "Subscriptions held by this node.");
  put("retained_messages", "gauge", s.retained, "Retained messages.");
  put("messages_received_total", "counter", s.messagesIn, "PUBLISH packets received.");
  put("messages_sent_total", "counter", s.messagesOut, "PUBLISH packets sent.");
  put(
    "messages_dropped_total",
    "counter",
    s.dropped,
    "Messages dropped (full queue, slow client).",
  );
  put(
    "messages_expired_total",
    "counter",
    s.expired,
    "Message copies discarded because their MQTT 5 Message Expiry Interval passed.",
  );
  for (const src of sources) {
    put(`${src.name}_healthy`, "gauge", src.healthy() ? 1 : 0, `1 when ${src.name} is healthy.`);
    for (const [k, v] of Object.entries(src.metrics())) {
      put(`${src.name}_${k}`, k.endsWith("_total") ? "counter" : "gauge", v, `${src.name} ${k}.`);
    }
  }
  return lines.join("\n") + "\n";
}

/** What the endpoint answers to one request head. */
function answer(
  head: RequestHead,
  broker: Broker,
  sources: HealthSource[],
): { status: number; type: string; body: string } {
  const path = head.target.split("?")[0];
  if (head.method !== "GET") return { status: 405, type: TEXT, body: "read-only\n" };
  if (path === "/metrics") {
    return { status: 200, type: "text/plain; version=0.0.4", body: metricsText(broker, sources) };
  }
  if (path === "/health") {
    const degraded = sources.filter((s) => !s.healthy()).map((s) => s.name);
    const reasons: Record<string, string> = {};
    for (const s of sources) {
      const r = s.reason?.();
      if (r) reasons[s.name] = r;
    }
    const body = JSON.stringify({
      status: degraded.length ? "degraded" : "ok",
      degraded,
      reasons,
      connections: broker.stats.connections,
    });
    return { status: degraded.length ? 503 : 200, type: "application/json", body };
  }
  return { status: 404, type: TEXT, body: "try /metrics or /health\n" };
}

const TEXT = "text/plain; charset=utf-8";
const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};
const encoder = new TextEncoder();

function response(status: number, type: string, body: string): Uint8Array {
  const bytes = encoder.encode(body);
  return encoder.encode(
    `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\ncontent-type: ${type}\r\n` +
      `content-length: ${bytes.length}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Serves /metrics and /health on the broker's own TCP listener rather than Deno.serve: its
 * sockets count against the same budget as the MQTT listeners, a request head must arrive
 * within `requestTimeout` seconds, and running out of descriptors cannot throw out of an accept
 * loop (Deno.serve's did, ending the process). One request per connection.
 */
export async function listenMetrics(
  opts: { hostname: string; port: number; requestTimeout: number; guard?: Guard },
  broker: Broker,
  sources: HealthSource[],
  log: Logger,
): Promise<Front> {
  const timeoutMs = opts.requestTimeout * 1000;
  const front = listenTcp(
    { hostname: opts.hostname, port: opts.port, name: "http", guard: opts.guard },
    (conn) => serveOne(conn, timeoutMs, (head) => answer(head, broker, sources)),
    log,
  );
  await front.ready;
  log.info(`listening http ${front.address} (/metrics, /health)`);
  return front;
}

/** Reads one request head from `conn`, writes the answer and closes. */
function serveOne(
  conn: ByteConnection & { readonly raw: RawIo },
  timeoutMs: number,
  respond: (head: RequestHead) => { status: number; type: string; body: string },
): void {
  const io = conn.raw;
  const parser = new RequestHeadParser();
  let done = false;
  const finish = (bytes: Uint8Array) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    io.pause();
    const written = io.write(bytes);
    // A write still pending would be cancelled by close(); written ones are in the kernel.
    if (written) written.then(() => conn.close(), () => conn.close());
    else conn.close();
  };
  const timer = setTimeout(
    () => finish(response(408, TEXT, `no request within ${timeoutMs} ms\n`)),
    timeoutMs,
  );
  io.start({
    onData(chunk) {
      if (done) return;
      const r = parser.feed(chunk);
      if ("error" in r) finish(response(r.error.status, TEXT, `${r.error.message}\n`));
      else if (r.done) {
        let a;
        try {
          a = respond(r.head);
        } catch (err) {
          a = { status: 503, type: TEXT, body: `${(err as Error).message}\n` };
        }
        finish(response(a.status, a.type, a.body));
      }
    },
    onEnd() {
      done = true;
      clearTimeout(timer);
    },
  });
}
