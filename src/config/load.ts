/**
 * Builds the broker's `Config` from, in increasing precedence: schema defaults, a nested YAML file,
 * environment variables and command-line flags. Everything key-specific comes from ./schema.ts.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import type { Document, Node as YamlNode, YAMLMap } from "yaml";
import {
  type ConfigFields,
  envNames,
  expectation,
  flagNames,
  type Row,
  ROW_BY_KEY,
  ROWS,
  SECTIONS,
} from "./schema.ts";

export { ROWS, SCHEMA } from "./schema.ts";
export type { ConfigFields, Row, ValueType } from "./schema.ts";

/** Bad configuration; start-up must stop. The message names the key and where it came from. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Thrown for `--help`/`-h`. Deliberately not a ConfigError: main.ts should print `message`
 * (the usage text) to stdout and exit 0.
 */
export class HelpRequested extends Error {
  override name = "HelpRequested";
  constructor(invocation?: string) {
    super(usage(invocation));
  }
}

export interface Config extends ConfigFields {
  /** Path of the YAML file that was loaded, or "defaults" when none was. */
  source: string;
}

export interface LoadOptions {
  args: string[];
  env: Record<string, string | undefined>;
  /** Injected by tests; must throw Deno.errors.NotFound (or an ENOENT error) for a missing file. */
  readTextFile?: (path: string) => string;
}

export interface LoadResult {
  config: Config;
  /** Human-readable notes, e.g. original-broker keys that are accepted but have no effect. */
  warnings: string[];
}

/** Used when neither --config nor MQTTWK_CONFIG is given, and only if it exists. */
export const DEFAULT_CONFIG_PATH = "config/application.yaml";
export const CONFIG_ENV = "MQTTWK_CONFIG";
/**
 * How the broker is started where it runs, shown in `--help` (the Docker image sets it to its
 * `docker run` form, where `deno task start` would mislead).
 */
export const INVOCATION_ENV = "MQTTWK_INVOCATION";
/** The `--help` usage line when INVOCATION_ENV is not set. */
export const DEFAULT_INVOCATION = "deno task start";
/** Set to 1, SIGUSR2 makes the broker print a memory report to stderr (main.ts). */
export const MEMORY_REPORT_ENV = "MQTTWK_MEMORY_REPORT";

type Value = string | number | boolean | string[];

interface Setting {
  row: Row;
  value: Value;
  /** "in FILE line N", "from environment variable X", "from command-line flag --x". */
  where: string;
}

export function loadConfig(opts: LoadOptions): LoadResult {
  const read = opts.readTextFile ?? ((p: string) => Deno.readTextFileSync(p));
  const warnings: string[] = [];

  const flags = parseFlags(opts.args, opts.env[INVOCATION_ENV] || undefined);

  let path: string | undefined = flags.configPath;
  let explicit = true;
  if (path === undefined && opts.env[CONFIG_ENV] !== undefined && opts.env[CONFIG_ENV] !== "") {
    path = opts.env[CONFIG_ENV];
  }
  if (path === undefined) {
    path = DEFAULT_CONFIG_PATH;
    explicit = false;
  }

  let source = "defaults";
  let fileSettings: Setting[] = [];
  const text = readConfigFile(read, path, explicit);
  if (text !== undefined) {
    source = path;
    fileSettings = parseYaml(text, path);
  }

  const settings = [...fileSettings, ...fromEnv(opts.env, warnings), ...flags.settings];

  const values = new Map<string, Value>();
  for (const row of ROWS) values.set(row.key, cloneValue(row.default));
  for (const s of settings) {
    if (s.row.ignored) {
      warnings.push(
        `${s.row.key} (${s.where}) is accepted for compatibility with the original MqttWk ` +
          `but has no effect: ${s.row.doc}`,
      );
      continue;
    }
    values.set(s.row.key, s.value);
  }

  const config = buildConfig(values, source);
  checkConsistency(config);
  return { config, warnings };
}

/** The configuration with every key at its default; handy as a base in tests. */
export function defaultConfig(): Config {
  const values = new Map<string, Value>();
  for (const row of ROWS) values.set(row.key, cloneValue(row.default));
  return buildConfig(values, "defaults");
}

function buildConfig(values: Map<string, Value>, source: string): Config {
  const out: Record<string, unknown> = {};
  for (const row of ROWS) {
    if (row.field) out[row.field] = values.get(row.key);
  }
  out.source = source;
  return out as unknown as Config;
}

function cloneValue(v: Row["default"]): Value {
  return Array.isArray(v) ? [...v] : v as Value;
}

function checkConsistency(c: Config): void {
  if (c.websocketEnabled && c.port !== 0 && c.port === c.websocketPort) {
    throw new ConfigError(
      `mqttwk.broker.port and mqttwk.broker.websocket-port are both ${c.port}; ` +
        `use different ports or set mqttwk.broker.websocket-enabled to false`,
    );
  }
}

// --- File ----------------------------------------------------------------------------------------

function readConfigFile(
  read: (p: string) => string,
  path: string,
  explicit: boolean,
): string | undefined {
  try {
    return read(path);
  } catch (e) {
    const notFound = e instanceof Deno.errors.NotFound ||
      (e as { code?: unknown } | null)?.code === "ENOENT";
    if (notFound && !explicit) return undefined;
    if (notFound) throw new ConfigError(`Configuration file not found: ${path}`);
    throw new ConfigError(`Cannot read configuration file ${path}: ${(e as Error).message}`);
  }
}

function parseYaml(text: string, path: string): Setting[] {
  const lineCounter = new LineCounter();
  // Error positions are turned into line numbers below, so the library's multi-line pretty
  // excerpts are not wanted in a one-line start-up error.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const lineOf = (offset: number | undefined) =>
    offset === undefined ? 0 : lineCounter.linePos(offset).line;

  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    throw new ConfigError(
      `YAML syntax error in ${path} line ${lineOf(err.pos[0])}: ${err.message.split("\n")[0]}`,
    );
  }
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return [];
  if (!isMap(root)) {
    throw new ConfigError(`${path} must contain a mapping of settings at the top level`);
  }
  const settings: Setting[] = [];
  walkMap(doc, root, "", path, lineOf, settings);
  return settings;
}

function walkMap(
  doc: Document,
  map: YAMLMap,
  prefix: string,
  path: string,
  lineOf: (offset: number | undefined) => number,
  out: Setting[],
): void {
  for (const pair of map.items) {
    const keyNode = pair.key;
    const line = lineOf(isScalar(keyNode) ? keyNode.range?.[0] : undefined);
    const where = `in ${path} line ${line}`;
    if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
      throw new ConfigError(
        `Unsupported (non-scalar) key under "${prefix || "top level"}" ${where}`,
      );
    }
    const name = String(keyNode.value);
    const key = prefix ? `${prefix}.${name}` : name;
    let valueNode = pair.value as YamlNode | null;
    if (isAlias(valueNode)) valueNode = valueNode.resolve(doc) ?? null;

    // A dotted name would otherwise match a key when written flat; the file format is nested only.
    const row = name.includes(".") ? undefined : ROW_BY_KEY.get(key);
    if (row) {
      const raw = yamlRaw(doc, valueNode, row);
      if (raw === undefined) continue; // `key:` with no value leaves the default, as in Spring
      out.push({ row, value: row.ignored ? "" : coerceOrThrow(row, raw, where), where });
    } else if (SECTIONS.has(key) && !name.includes(".")) {
      if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) continue;
      if (!isMap(valueNode)) {
        throw new ConfigError(
          `Invalid value for ${key} ${where}: expected a mapping of settings, got ` +
            describe(yamlRaw(doc, valueNode, undefined)),
        );
      }
      walkMap(doc, valueNode, key, path, lineOf, out);
    } else {
      const hint = name.includes(".") ? " (nested YAML keys are expected, not dotted ones)" : "";
      throw new ConfigError(
        `Unknown configuration key ${key} ${where}` +
          (hint || didYouMean(key, allKeysAndSections())),
      );
    }
  }
}

/** `undefined` means "no value given" (YAML null). Mappings become a plain object for messages. */
function yamlRaw(doc: Document, node: YamlNode | null, row: Row | undefined): unknown {
  if (node === null) return undefined;
  if (isAlias(node)) return yamlRaw(doc, node.resolve(doc) ?? null, row);
  if (isScalar(node)) {
    if (node.value === null) return undefined;
    // A password like 0123 must not become the number 123.
    if (row?.type === "string" && typeof node.value !== "string" && node.source !== undefined) {
      return node.source;
    }
    return node.value;
  }
  if (isSeq(node)) {
    return node.items.map((item) => {
      const n = isAlias(item) ? item.resolve(doc) : item;
      return isScalar(n) ? n.value : {};
    });
  }
  return {};
}

// --- Environment ---------------------------------------------------------------------------------

function fromEnv(env: Record<string, string | undefined>, warnings: string[]): Setting[] {
  const out: Setting[] = [];
  const known = new Set<string>([CONFIG_ENV, MEMORY_REPORT_ENV, INVOCATION_ENV]);
  for (const row of ROWS) {
    const names = envNames(row);
    names.forEach((n) => known.add(n));
    const present = names.filter((n) => env[n] !== undefined);
    if (present.length === 0) continue;
    const name = present[0];
    const raw = env[name] as string;
    if (present.length > 1 && env[present[1]] !== raw) {
      warnings.push(`Both ${present[0]} and ${present[1]} are set; using ${present[0]}`);
    }
    const where = `from environment variable ${name}`;
    out.push({ row, value: row.ignored ? "" : coerceOrThrow(row, raw, where), where });
  }
  // Other variables are none of our business, but an MQTTWK_ one is most likely a typo.
  for (const name of Object.keys(env)) {
    if (name.startsWith("MQTTWK_") && !known.has(name) && env[name] !== undefined) {
      warnings.push(
        `Environment variable ${name} does not match any configuration key and is ignored` +
          didYouMean(name, [...known]),
      );
    }
  }
  return out;
}

// --- Command line --------------------------------------------------------------------------------

const FLAG_ROWS: ReadonlyMap<string, Row> = new Map(
  ROWS.flatMap((r) => flagNames(r).map((f) => [f, r] as const)),
);

const BOOL_WORDS = new Map<string, boolean>([
  ["true", true],
  ["false", false],
  ["yes", true],
  ["no", false],
  ["on", true],
  ["off", false],
]);

function parseFlags(
  args: string[],
  invocation: string | undefined,
): { configPath?: string; settings: Setting[] } {
  const settings: Setting[] = [];
  let configPath: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--help" || arg === "-h") throw new HelpRequested(invocation);
    if (!arg.startsWith("--") || arg === "--") {
      throw new ConfigError(`Unexpected command-line argument "${arg}"; settings are --KEY=VALUE`);
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    const row = FLAG_ROWS.get(name);
    if (!row && name !== "config") {
      const names = ["config", "help", ...FLAG_ROWS.keys()];
      throw new ConfigError(
        `Unknown command-line flag --${name}${didYouMean(name, names, "--")}`,
      );
    }
    if (value === undefined) {
      const next = args[i + 1];
      if (row?.type === "bool") {
        // A bare boolean flag means true; only consume the next word if it is a boolean.
        if (next !== undefined && BOOL_WORDS.has(next.toLowerCase())) {
          value = next;
          i++;
        } else {
          value = "true";
        }
      } else if (next !== undefined && !next.startsWith("--")) {
        value = next;
        i++;
      } else {
        throw new ConfigError(`Command-line flag --${name} needs a value (--${name}=VALUE)`);
      }
    }
    if (!row) {
      configPath = value;
      continue;
    }
    const where = `from command-line flag --${name}`;
    settings.push({ row, value: row.ignored ? "" : coerceOrThrow(row, value, where), where });
  }
  return { configPath, settings };
}

// --- Values --------------------------------------------------------------------------------------

function coerceOrThrow(row: Row, raw: unknown, where: string): Value {
  const v = coerce(row, raw);
  if (v === undefined) {
    const got = row.secret && typeof raw === "string" ? "a hidden value" : describe(raw);
    throw new ConfigError(
      `Invalid value for ${row.key} ${where}: expected ${expectation(row)}, got ${got}`,
    );
  }
  return v;
}

const BYTE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

const DURATION_UNITS: Record<string, number> = { "": 1, ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Returns undefined when `raw` is not acceptable for `row`. */
export function coerce(row: Row, raw: unknown): Value | undefined {
  if (typeof raw === "string" && row.synonyms) {
    const word = raw.trim().toLowerCase();
    const syn = Object.entries(row.synonyms).find(([w]) => w === word);
    if (syn) raw = syn[1];
  }
  if (row.emptyIsDefault && (raw === "" || (typeof raw === "string" && raw.trim() === ""))) {
    return cloneValue(row.default);
  }
  const inRange = (n: number) =>
    (row.min === undefined || n >= row.min) && (row.max === undefined || n <= row.max);

  switch (row.type) {
    case "string":
      if (typeof raw === "string") return raw;
      if (typeof raw === "number" || typeof raw === "boolean" || typeof raw === "bigint") {
        return String(raw);
      }
      return undefined;
    case "int":
    case "port": {
      const n = toInteger(raw);
      if (n === undefined) return undefined;
      if (row.type === "port" && (n < 0 || n > 65535)) return undefined;
      return inRange(n) ? n : undefined;
    }
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (typeof raw === "string") return BOOL_WORDS.get(raw.trim().toLowerCase());
      return undefined;
    case "enum": {
      if (typeof raw !== "string") return undefined;
      const want = raw.trim().toLowerCase();
      return row.values?.find((v) => v.toLowerCase() === want);
    }
    case "list":
      if (Array.isArray(raw)) {
        if (raw.some((x) => x === null || typeof x === "object")) return undefined;
        return raw.map((x) => String(x).trim()).filter((x) => x !== "");
      }
      if (typeof raw === "string") return raw.split(",").map((x) => x.trim()).filter(Boolean);
      return undefined;
    case "bytes": {
      let n: number | undefined;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "string") {
        const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(raw);
        const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined;
        if (m && unit !== undefined) n = Number(m[1]) * unit;
      }
      if (n === undefined || !Number.isSafeInteger(n) || n < 0) return undefined;
      return inRange(n) ? n : undefined;
    }
    case "duration": {
      let n: number | undefined;
      if (typeof raw === "number") n = raw;
      else if (typeof raw === "string") {
        const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(raw);
        const unit = m ? DURATION_UNITS[m[2].toLowerCase()] : undefined;
        // Multiplying 0.001 would give 0.30000000000000004 for "300ms".
        if (m && unit !== undefined) n = unit < 1 ? Number(m[1]) / (1 / unit) : Number(m[1]) * unit;
      }
      if (n === undefined || !Number.isFinite(n) || n < 0) return undefined;
      return inRange(n) ? n : undefined;
    }
  }
}

function toInteger(raw: unknown): number | undefined {
  if (typeof raw === "number") return Number.isSafeInteger(raw) ? raw : undefined;
  if (typeof raw === "bigint") return undefined;
  if (typeof raw !== "string" || !/^\s*[+-]?\d+\s*$/.test(raw)) return undefined;
  const n = Number(raw);
  return Number.isSafeInteger(n) ? n : undefined;
}

function describe(raw: unknown): string {
  if (raw === undefined || raw === null) return "nothing";
  if (Array.isArray(raw)) return "a list";
  if (typeof raw === "object") return "a mapping";
  if (typeof raw === "string") return JSON.stringify(raw);
  return String(raw);
}

// --- Suggestions ---------------------------------------------------------------------------------

let keysAndSections: string[] | undefined;
function allKeysAndSections(): string[] {
  keysAndSections ??= [...ROWS.map((r) => r.key), ...SECTIONS];
  return keysAndSections;
}

function didYouMean(input: string, candidates: Iterable<string>, prefix = ""): string {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = editDistance(input.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  const limit = Math.max(2, Math.floor(input.length / 4));
  return best !== undefined && bestDist <= limit ? ` (did you mean ${prefix}${best}?)` : "";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

// --- Help ----------------------------------------------------------------------------------------

/** Usage text generated from the schema, for `--help`; `invocation` is how the broker is started. */
export function usage(invocation: string = DEFAULT_INVOCATION): string {
  const lines = [
    `Usage: ${invocation} [--config FILE] [--KEY=VALUE | --KEY VALUE]...`,
    "",
    "Settings come from, lowest precedence first: built-in defaults; the YAML file (--config FILE,",
    `else $${CONFIG_ENV}, else ${DEFAULT_CONFIG_PATH} if it exists); environment variables;`,
    "command-line flags. Durations are seconds unless a unit is given (ms, s, m, h, d); byte sizes",
    "accept KB/MB/GB (and KiB/MiB/GiB), all multiples of 1024.",
    "",
    "  --config FILE",
    "      YAML configuration file (nested keys, like config/application.yaml).",
    "  -h, --help",
    "      Print this help and exit.",
    "",
  ];
  for (const row of ROWS) {
    if (row.ignored) continue;
    const flags = flagNames(row).map((f) => `--${f}`).join(", ");
    const def = Array.isArray(row.default) ? row.default.join(",") : row.default;
    const shown = typeof def === "string" ? JSON.stringify(def) : String(def);
    lines.push(`  ${flags} <${row.type}>   (default: ${shown})`);
    lines.push(`      ${row.doc}`);
    lines.push(`      Accepts ${expectation(row)}. Env: ${envNames(row).join(" or ")}`);
  }
  lines.push(
    "",
    "Accepted for compatibility with the original MqttWk, but without effect:",
    ...ROWS.filter((r) => r.ignored).map((r) => `  ${r.key}`),
  );
  return lines.join("\n");
}
