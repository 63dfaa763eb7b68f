/**
 * RSA keys and passwords for the original MqttWk password scheme.
 *
 *   deno task auth-keygen [--out DIR] [--name NAME] [--bits N] [--force]
 *       writes DIR/NAME-private.pem (mode 600) and DIR/NAME-public.pem; defaults keystore, auth
 *   deno task auth-password [--key PRIVATE.pem] <username>...
 *       prints "<username> <password>" per user (default key keystore/auth-private.pem)
 *   deno run --allow-read scripts/auth.ts verify --key PUBLIC.pem <username> <password>
 *       exits 0 when the password is right for the user, 1 otherwise
 */
import {
  generateRsaKeyPair,
  parsePrivateKeyPem,
  parsePublicKeyPem,
  rsaPassword,
  verifyRsaPassword,
} from "../src/auth/rsa.ts";

const USAGE = `usage:
  auth.ts keygen [--out DIR] [--name NAME] [--bits N] [--force]
  auth.ts password [--key PRIVATE.pem] <username>...
  auth.ts verify --key PUBLIC.pem <username> <password>`;

interface Parsed {
  flags: Map<string, string>;
  positional: string[];
}

function parseArgs(args: string[], valued: string[], bare: string[]): Parsed {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = eq === -1 ? a.slice(2) : a.slice(2, eq);
    if (bare.includes(name)) {
      flags.set(name, "true");
    } else if (valued.includes(name)) {
      const v = eq === -1 ? args[++i] : a.slice(eq + 1);
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { flags, positional };
}

class UsageError extends Error {}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

export async function run(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === "keygen") {
    const { flags, positional } = parseArgs(rest, ["out", "name", "bits"], ["force"]);
    if (positional.length) throw new UsageError(`unexpected argument ${positional[0]}`);
    const dir = flags.get("out") ?? "keystore";
    const name = flags.get("name") ?? "auth";
    const bits = Number(flags.get("bits") ?? 2048);
    if (!Number.isInteger(bits) || bits < 2048 || bits > 8192 || bits % 8 !== 0) {
      throw new UsageError("--bits must be a multiple of 8 from 2048 to 8192");
    }
    const priv = `${dir}/${name}-private.pem`;
    const pub = `${dir}/${name}-public.pem`;
    if (!flags.has("force")) {
      for (const f of [priv, pub]) {
        if (await exists(f)) {
          console.error(`${f} exists; use --force to replace it`);
          return 1;
        }
      }
    }
    const pair = await generateRsaKeyPair(bits);
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(priv, pair.privatePem, { mode: 0o600 });
    await Deno.chmod(priv, 0o600); // mode only applies when the file is created
    await Deno.writeTextFile(pub, pair.publicPem, { mode: 0o644 });
    console.log(`wrote ${priv} (keep it secret, it mints passwords) and ${pub}`);
    console.log(`broker: --mqttwk.broker.auth.rsa-public-key=${pub}`);
    return 0;
  }
  if (cmd === "password") {
    const { flags, positional } = parseArgs(rest, ["key"], []);
    if (positional.length === 0) throw new UsageError("password needs at least one username");
    const keyPath = flags.get("key") ?? "keystore/auth-private.pem";
    const key = parsePrivateKeyPem(await Deno.readTextFile(keyPath));
    for (const user of positional) {
      const pw = rsaPassword(key, user);
      console.log(positional.length === 1 ? pw : `${user} ${pw}`);
    }
    return 0;
  }
  if (cmd === "verify") {
    const { flags, positional } = parseArgs(rest, ["key"], []);
    if (positional.length !== 2 || !flags.has("key")) {
      throw new UsageError("verify needs --key PUBLIC.pem, a username and a password");
    }
    const key = parsePublicKeyPem(await Deno.readTextFile(flags.get("key")!));
    const ok = verifyRsaPassword(key, positional[0], positional[1]);
    console.log(ok ? "valid" : "INVALID");
    return ok ? 0 : 1;
  }
  throw new UsageError(cmd ? `unknown command ${cmd}` : "no command given");
}

if (import.meta.main) {
  try {
    Deno.exit(await run(Deno.args));
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`auth: ${e.message}\n${USAGE}`);
      Deno.exit(2);
    }
    console.error(`auth: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
