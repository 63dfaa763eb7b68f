/**
 * Creates, lists and revokes the HTTP API's keys (stored hashed, see src/http/api_keys.ts).
 *
 *   deno task api-key create <name> --role admin|read   prints the new key once
 *   deno task api-key revoke <name>
 *   deno task api-key list
 *   --file F        the keys file (default: mqttwk.http.api-keys-file, else <data-dir>/api-keys,
 *                   from the same configuration sources as the broker: --config, env, flags)
 *
 * The file is replaced atomically (write, then rename) with mode 600; a running broker picks the
 * change up within a second.
 */
import { dirname, join } from "node:path";
import { ConfigError, loadConfig } from "../src/config/load.ts";
import {
  type ApiKeyEntry,
  formatKeys,
  hashKey,
  newKey,
  parseKeys,
  validKeyName,
} from "../src/http/api_keys.ts";

const USAGE = `usage:
  api_key.ts create <name> --role admin|read [--file F] [broker flags]
  api_key.ts revoke <name> [--file F]
  api_key.ts list [--file F]`;

/** Runs the tool; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const rest: string[] = [];
  let file: string | undefined;
  let role: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--file") file = args[++i];
    else if (a.startsWith("--file=")) file = a.slice(7);
    else if (a === "--role") role = args[++i];
    else if (a.startsWith("--role=")) role = a.slice(7);
    else rest.push(a);
  }
  const positional = rest.filter((a) => !a.startsWith("--"));
  const flags = rest.filter((a) => a.startsWith("--"));
  const [command, name] = positional;
  if (!command || !["create", "revoke", "list"].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  if (file === undefined) {
    try {
      const { config } = loadConfig({ args: flags, env: Deno.env.toObject() });
      file = config.httpApiKeysFile || join(config.dataDir, "api-keys");
    } catch (err) {
      if (err instanceof ConfigError) {
        console.error(err.message);
        return 2;
      }
      throw err;
    }
  }
  let entries: ApiKeyEntry[] = [];
  try {
    entries = parseKeys(await Deno.readTextFile(file), file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) {
      console.error((err as Error).message);
      return 1;
    }
  }
  if (command === "list") {
    if (entries.length === 0) console.log(`no API keys in ${file}`);
    for (const e of entries) console.log(`${e.name}\t${e.role}`);
    return 0;
  }
  if (!name || !validKeyName(name)) {
    console.error("a key name is required: letters, digits, _ . @ - (at most 64)");
    return 2;
  }
  if (command === "revoke") {
    const left = entries.filter((e) => e.name !== name);
    if (left.length === entries.length) {
      console.error(`no API key named ${name} in ${file}`);
      return 1;
    }
    await write(file, left);
    console.log(`revoked API key ${name}`);
    return 0;
  }
  if (role !== "admin" && role !== "read") {
    console.error("--role admin or --role read is required");
    return 2;
  }
  if (entries.some((e) => e.name === name)) {
    console.error(`an API key named ${name} exists; revoke it first`);
    return 1;
  }
  const key = newKey();
  await write(file, [...entries, { name, role, hash: hashKey(key) }]);
  console.error(`created API key ${name} (${role}) in ${file}; it is shown only now:`);
  console.log(key);
  return 0;
}

async function write(file: string, entries: ApiKeyEntry[]): Promise<void> {
  await Deno.mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${Deno.pid}`;
  await Deno.writeTextFile(tmp, formatKeys(entries), { mode: 0o600 });
  await Deno.rename(tmp, file);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
