/**
 * `deno task ctl <command>`: operates a broker (or a cluster, through any node) over its HTTP
 * API, for scripts and people.
 *
 *   status
 *   clients list [--prefix P] [--username U] [--address A] [--protocol 3|4|5]
 *   clients show <clientId> | clients kick <clientId>
 *   sessions list [--prefix P] [--connected true|false] | sessions delete <clientId>
 *   subscriptions [--client ID] [--filter F]
 *   retained list [--filter F] | retained get <topic> | retained delete <topic>
 *   publish <topic> <payload> [--qos 0|1|2] [--retain] [--base64] [--content-type T]
 *                              [--user-property name=value]...
 *   reload
 *
 * Connection: --url (or MQTTWK_URL; default http://127.0.0.1:8922), --key (or MQTTWK_API_KEY)
 * or --user/--password (or MQTTWK_USER/MQTTWK_PASSWORD). --json prints the API's JSON; lists
 * take --limit/--offset (default 1000/0). Exit codes: 0 done, 1 the API refused (4xx/5xx),
 * 2 wrong usage, 3 the broker could not be reached.
 */

const USAGE = `usage: deno task ctl [--url U] [--key K | --user U --password P] [--json] <command>
commands:
  status
  clients list [--prefix P] [--username U] [--address A] [--protocol 3|4|5]
  clients show <clientId>        clients kick <clientId>
  sessions list [--prefix P] [--connected true|false]
  sessions delete <clientId>
  subscriptions [--client ID] [--filter F]
  retained list [--filter F]     retained get <topic>     retained delete <topic>
  publish <topic> <payload> [--qos 0|1|2] [--retain] [--base64] [--content-type T]
                            [--user-property name=value]...
  reload`;

/** Exit codes. */
export const EXIT = { ok: 0, refused: 1, usage: 2, unreachable: 3 } as const;

class Usage extends Error {}

interface Parsed {
  words: string[];
  flags: Map<string, string[]>;
}

const BOOLEAN = new Set(["json", "retain", "base64", "help"]);

function parse(args: string[]): Parsed {
  const words: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      words.push(...args.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = a.slice(2, eq < 0 ? undefined : eq);
      let value: string;
      if (eq >= 0) value = a.slice(eq + 1);
      else if (BOOLEAN.has(name)) value = "true";
      else if (i + 1 < args.length) value = args[++i];
      else throw new Usage(`--${name} needs a value`);
      flags.set(name, [...(flags.get(name) ?? []), value]);
    } else words.push(a);
  }
  return { words, flags };
}

/** What one run prints and returns; `out`/`err` are replaceable for tests. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  env(name: string): string | undefined;
}

const realIo: Io = {
  out: (s) => console.log(s),
  err: (s) => console.error(s),
  env: (n) => Deno.env.get(n),
};

/** Runs one command; resolves to the exit code. */
export async function main(args: string[], io: Io = realIo): Promise<number> {
  let p: Parsed;
  try {
    p = parse(args);
  } catch (e) {
    io.err(`${(e as Error).message}\n${USAGE}`);
    return EXIT.usage;
  }
  const flag = (n: string) => p.flags.get(n)?.at(-1);
  if (flag("help") || p.words.length === 0) {
    io.err(USAGE);
    return p.words.length === 0 && !flag("help") ? EXIT.usage : EXIT.ok;
  }
  const url = (flag("url") ?? io.env("MQTTWK_URL") ?? "http://127.0.0.1:8922").replace(/\/+$/, "");
  const headers: Record<string, string> = { "x-requested-with": "mqttwk-ctl" };
  const key = flag("key") ?? io.env("MQTTWK_API_KEY");
  const user = flag("user") ?? io.env("MQTTWK_USER");
  if (key) headers.authorization = `Bearer ${key}`;
  else if (user) {
    const pw = flag("password") ?? io.env("MQTTWK_PASSWORD") ?? "";
    const bytes = new TextEncoder().encode(`${user}:${pw}`);
    headers.authorization = `Basic ${btoa(String.fromCharCode(...bytes))}`;
  }
  const json = flag("json") === "true";
  let req: Request;
  let show: (body: Record<string, unknown>) => string;
  try {
    [req, show] = build(p, url, headers);
  } catch (e) {
    if (!(e instanceof Usage)) throw e;
    io.err(`${e.message}\n${USAGE}`);
    return EXIT.usage;
  }
  let res: Response;
  try {
    res = await fetch(req);
  } catch (e) {
    io.err(`cannot reach ${url}: ${(e as Error).message}`);
    return EXIT.unreachable;
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text);
  } catch {
    body = { error: text.trim() || res.statusText };
  }
  if (!res.ok) {
    io.err(`error ${res.status}: ${body.error ?? body.msg ?? res.statusText}`);
    return EXIT.refused;
  }
  io.out(json ? JSON.stringify(body, null, 2) : show(body));
  return EXIT.ok;
}

const enc = encodeURIComponent;

function build(
  p: Parsed,
  url: string,
  headers: Record<string, string>,
): [Request, (b: Record<string, unknown>) => string] {
  const [cmd, sub, arg, ...extra] = p.words;
  const flag = (n: string) => p.flags.get(n)?.at(-1);
  const get = (path: string, q: Record<string, string | undefined> = {}) => {
    const qs = new URLSearchParams({
      limit: flag("limit") ?? "1000",
      offset: flag("offset") ?? "0",
    });
    for (const [k, v] of Object.entries(q)) if (v !== undefined) qs.set(k, v);
    return new Request(`${url}${path}?${qs}`, { headers });
  };
  const send = (method: string, path: string, body?: unknown) =>
    new Request(`${url}${path}`, {
      method,
      headers: { ...headers, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
  const need = (v: string | undefined, what: string) => {
    if (v === undefined || v === "") throw new Usage(`${what} is required`);
    if (extra.length) throw new Usage(`unexpected ${extra.join(" ")}`);
    return v;
  };
  const done = (what: string) => () => what;
  switch (`${cmd} ${sub ?? ""}`.trim()) {
    case "status":
      return [get("/api/v1/status"), showStatus];
    case "clients list":
    case "clients":
      return [
        get("/api/v1/clients", {
          prefix: flag("prefix"),
          user: flag("user-name") ?? flag("username"),
          address: flag("address"),
          protocol: flag("protocol"),
        }),
        (b) =>
          table(b, [
            "clientId",
            "username",
            "address",
            "protocolVersion",
            "node",
            "subscriptions",
            "inflight",
            "queued",
          ]),
      ];
    case "clients show":
      return [get(`/api/v1/clients/${enc(need(arg, "a client id"))}`), (b) => pairs(b)];
    case "clients kick":
      return [
        send("DELETE", `/api/v1/clients/${enc(need(arg, "a client id"))}`),
        done("disconnected"),
      ];
    case "sessions list":
    case "sessions":
      return [
        get("/api/v1/sessions", { prefix: flag("prefix"), connected: flag("connected") }),
        (b) =>
          table(b, ["clientId", "connected", "node", "subscriptions", "queued", "expiryInterval"]),
      ];
    case "sessions delete":
      return [send("DELETE", `/api/v1/sessions/${enc(need(arg, "a client id"))}`), done("deleted")];
    case "subscriptions":
      return [
        get("/api/v1/subscriptions", { clientId: flag("client"), filter: flag("filter") }),
        (b) => table(b, ["clientId", "filter", "qos", "node"]),
      ];
    case "retained list":
    case "retained":
      return [
        get("/api/v1/retained", { filter: flag("filter") }),
        (b) => table(b, ["topic", "qos", "size", "encoding", "payload"]),
      ];
    case "retained get":
      return [get(`/api/v1/retained/${enc(need(arg, "a topic"))}`), (b) => pairs(b)];
    case "retained delete":
      return [send("DELETE", `/api/v1/retained/${enc(need(arg, "a topic"))}`), done("deleted")];
    case "reload":
      return [send("POST", "/api/v1/reload"), done("reloaded")];
  }
  if (cmd === "publish") {
    const topic = sub;
    const payload = arg;
    if (!topic || payload === undefined) throw new Usage("publish needs <topic> <payload>");
    if (extra.length) throw new Usage(`unexpected ${extra.join(" ")}`);
    const qos = Number(flag("qos") ?? "0");
    if (![0, 1, 2].includes(qos)) throw new Usage("--qos must be 0, 1 or 2");
    const properties: Record<string, unknown> = {};
    if (flag("content-type")) properties.contentType = flag("content-type");
    const ups = (p.flags.get("user-property") ?? []).map((s) => {
      const eq = s.indexOf("=");
      if (eq <= 0) throw new Usage("--user-property takes name=value");
      return [s.slice(0, eq), s.slice(eq + 1)];
    });
    if (ups.length) properties.userProperties = ups;
    return [
      send("POST", "/api/v1/publish", {
        topic,
        payload,
        encoding: flag("base64") === "true" ? "base64" : "utf8",
        qos,
        retain: flag("retain") === "true",
        ...(Object.keys(properties).length ? { properties } : {}),
      }),
      done("published"),
    ];
  }
  throw new Usage(`unknown command: ${p.words.join(" ")}`);
}

/** A list answer as an aligned table, with a total line. */
export function table(body: Record<string, unknown>, cols: string[]): string {
  const items = (body.items ?? []) as Record<string, unknown>[];
  const cell = (v: unknown) => {
    const s = v === null || v === undefined
      ? "-"
      : typeof v === "object"
      ? JSON.stringify(v)
      : String(v);
    // Control characters in client ids or payloads must not drive the terminal.
    // deno-lint-ignore no-control-regex
    const clean = s.replace(/[\x00-\x1f\x7f-\x9f]/g, "?");
    return clean.length > 60 ? clean.slice(0, 57) + "..." : clean;
  };
  const rows = [cols.map((c) => c.toUpperCase()), ...items.map((i) => cols.map((c) => cell(i[c])))];
  const widths = cols.map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const lines = rows.map((r) => r.map((c, j) => c.padEnd(widths[j])).join("  ").trimEnd());
  lines.push(`(${items.length} shown of ${body.total ?? items.length})`);
  return lines.join("\n");
}

function pairs(body: Record<string, unknown>): string {
  const width = Math.max(...Object.keys(body).map((k) => k.length));
  return Object.entries(body).map(([k, v]) =>
    `${k.padEnd(width)}  ${typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)}`
  ).join("\n");
}

function showStatus(b: Record<string, unknown>): string {
  const s = b.stats as Record<string, number>;
  const c = b.cluster as { enabled: boolean; nodes: Record<string, unknown>[] };
  const store = b.store as { kind: string; healthy: boolean };
  const kafka = b.kafka as { enabled: boolean; healthy: boolean };
  const lines = [
    `mqttwk ${b.version}  node ${b.node}  up ${b.uptimeSeconds}s`,
    `store ${store.kind} (${store.healthy ? "healthy" : "UNHEALTHY"})  kafka ${
      kafka.enabled ? (kafka.healthy ? "healthy" : "UNHEALTHY") : "off"
    }  cluster ${c.enabled ? "on" : "off"}`,
    `connections ${s.connections}  sessions ${s.sessions}  subscriptions ${s.subscriptions}  ` +
    `retained ${s.retained}`,
    `messages in ${s.messagesIn}  out ${s.messagesOut}  dropped ${s.dropped}`,
    "",
    table({ items: c.nodes, total: c.nodes.length }, [
      "id",
      "healthy",
      "connections",
      "uptimeSeconds",
    ]),
  ];
  return lines.join("\n");
}

if (import.meta.main) Deno.exit(await main(Deno.args));
