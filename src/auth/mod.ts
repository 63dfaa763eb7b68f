/** Builds the authenticator and authorizer the configuration asks for. */
import type {
  Authenticator,
  AuthExchange,
  Authorizer,
  AuthRequest,
  AuthResult,
  AuthStep,
  EnhancedAuthenticator,
} from "../broker/ports/auth.ts";
import { allowAll } from "../broker/ports/auth.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { AclChecker, type AclFile, parseAcl } from "./acl.ts";
import { AttemptQueue, ConnectionRateLimiter, FailureBackoff, ipOf, isLoopback } from "./limits.ts";
import {
  CONNACK_NOT_AUTHORIZED,
  CONNACK_SERVER_UNAVAILABLE,
  HttpHookProvider,
  PasswordFileProvider,
  type Provider,
  RsaProvider,
  runChain,
} from "./providers.ts";
import { SCRAM_SHA_256, ScramServerExchange } from "./scram.ts";
import { ScramFileUsers } from "./scram_file.ts";

/** What src/auth/ gives the core: the auth ports, the admission hook and a reload. */
export interface Security {
  authenticator: Authenticator;
  authorizer: Authorizer;
  /** MQTT 5.0 enhanced authentication (SCRAM-SHA-256) when a SCRAM file is configured. */
  enhancedAuthenticator?: EnhancedAuthenticator;
  /** Connection admission (rate limit per address); null admits. */
  admit?: (remoteAddress: string) => string | null;
  /** Re-reads the key, password, SCRAM and ACL files (SIGHUP). */
  reload(): Promise<void> | void;
}

type AuthConfig = Pick<
  Config,
  | "passwordMust"
  | "authProviders"
  | "authRsaPublicKey"
  | "authPasswordFile"
  | "authScramFile"
  | "authHttpUrl"
  | "authHttpTimeout"
  | "authHttpCacheTtl"
  | "authAclFile"
  | "authMaxConnectionRate"
  | "authConnectionBurst"
  | "authFailureDelayMax"
  | "authMaxPendingPerIp"
  | "authLimitLoopback"
>;

const PROVIDER_NAMES = ["rsa", "password-file", "http"] as const;

function buildProviders(config: AuthConfig, log: Logger): Provider[] {
  const configured: Record<string, () => Provider> = {};
  if (config.authRsaPublicKey) {
    configured.rsa = () => new RsaProvider(config.authRsaPublicKey);
  }
  if (config.authPasswordFile) {
    configured["password-file"] = () => new PasswordFileProvider(config.authPasswordFile);
  }
  if (config.authHttpUrl) {
    let url: URL;
    try {
      url = new URL(config.authHttpUrl);
    } catch {
      throw new Error("mqttwk.broker.auth.http-url is not a valid URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error("mqttwk.broker.auth.http-url must be an http:// or https:// URL");
    }
    configured.http = () =>
      new HttpHookProvider({
        url: config.authHttpUrl,
        timeout: config.authHttpTimeout,
        cacheTtl: config.authHttpCacheTtl,
        log,
      });
  }
  const names = config.authProviders.length > 0
    ? config.authProviders.map((n) => n.toLowerCase())
    : PROVIDER_NAMES.filter((n) => configured[n]);
  const seen = new Set<string>();
  return names.map((name) => {
    if (!(PROVIDER_NAMES as readonly string[]).includes(name)) {
      throw new Error(
        `mqttwk.broker.auth.providers: unknown provider "${name}" (known: ${
          PROVIDER_NAMES.join(", ")
        })`,
      );
    }
    if (seen.has(name)) throw new Error(`mqttwk.broker.auth.providers: "${name}" is listed twice`);
    seen.add(name);
    const make = configured[name];
    if (!make) {
      const key = { rsa: "rsa-public-key", "password-file": "password-file", http: "http-url" }[
        name as (typeof PROVIDER_NAMES)[number]
      ];
      throw new Error(
        `mqttwk.broker.auth.providers lists "${name}" but mqttwk.broker.auth.${key} is not set`,
      );
    }
    return make();
  });
}

async function readAcl(path: string): Promise<AclFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`ACL file ${path}: ${(e as Error).message}`);
  }
  return parseAcl(text, path);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A warning at most once a second with the number of occurrences since the last one, so a flood
 * of refusals cannot flood the log too.
 */
function rateLimitedWarning(log: Logger): (msg: string) => void {
  let count = 0;
  let loggedAt = -Infinity;
  return (msg) => {
    count++;
    const now = Date.now();
    if (now - loggedAt < 1000) return;
    loggedAt = now;
    log.warn(`${msg} (${count} refused so far)`);
  };
}

/**
 * The authenticator, authorizer and admission hook for `config`; rejects with a message naming
 * the config key when the settings contradict each other or a file cannot be read.
 */
export async function createSecurity(config: AuthConfig, log: Logger): Promise<Security> {
  const providers = config.passwordMust ? buildProviders(config, log) : [];
  const scram = config.authScramFile ? new ScramFileUsers(config.authScramFile) : undefined;
  // SCRAM alone is a valid setup: only clients that prove a password by SCRAM get in.
  if (config.passwordMust && providers.length === 0 && !scram) {
    throw new Error(
      "mqtt-password-must is true but no authentication provider is configured: set " +
        "mqttwk.broker.auth.rsa-public-key (keystore/demo-auth-public.pem accepts the original " +
        "MqttWk's demo credentials), mqttwk.broker.auth.password-file, " +
        "mqttwk.broker.auth.http-url or mqttwk.broker.auth.scram-file",
    );
  }
  if (!config.passwordMust) {
    const set = [
      config.authRsaPublicKey && "rsa-public-key",
      config.authPasswordFile && "password-file",
      config.authHttpUrl && "http-url",
    ].filter(Boolean);
    if (set.length > 0) {
      log.warn(
        `mqttwk.broker.auth.${set.join(", ")} set but mqtt-password-must is false: ` +
          `every client is let in without a password check`,
      );
    }
  }

  // Everything is read before anything is installed, here and on reload.
  const loadAll = async () => {
    const installs = await Promise.all([
      ...providers.map((p) => p.load?.() ?? (() => {})),
      ...(scram ? [scram.load()] : []),
    ]);
    const acl = config.authAclFile ? await readAcl(config.authAclFile) : undefined;
    return { installs, acl };
  };
  const first = await loadAll();
  first.installs.forEach((install) => install());
  const checker = first.acl ? new AclChecker(first.acl) : undefined;

  if (checker && !config.passwordMust) {
    log.warn(
      "an ACL file is set but mqtt-password-must is false: ACL rules match usernames that " +
        "nobody verified",
    );
  }
  log.info(
    config.passwordMust
      ? `authentication on: ${providers.map((p) => p.name).join(", ")}`
      : "authentication off (mqtt-password-must is false)",
  );
  if (checker) log.info(`ACL from ${config.authAclFile}`);
  if (scram) {
    log.info(
      `enhanced authentication ${SCRAM_SHA_256} for ${scram.userCount} user(s) of ` +
        `${config.authScramFile}` +
        (config.passwordMust ? "" : " (clients that do not use it are let in unchecked)"),
    );
  }

  const backoff = new FailureBackoff(config.authFailureDelayMax * 1000);
  const queue = new AttemptQueue(config.authMaxPendingPerIp);
  const limited = (ip: string) => config.authLimitLoopback || !isLoopback(ip);
  const queueFull = rateLimitedWarning(log);

  /** Runs one check after the address's back-off; `failed` says whether it counts against it. */
  const throttled = async <T>(
    ip: string,
    check: () => T | Promise<T>,
    failed: (result: T) => boolean,
  ): Promise<T> => {
    // Waiting before deciding, not after, so an attacker cannot cut the wait short by
    // hanging up once the answer is known.
    const wait = backoff.delayFor(ip);
    if (wait > 0) await sleep(wait);
    const result = await check();
    if (failed(result)) backoff.failed(ip);
    return result;
  };

  const attempt = (req: AuthRequest, ip: string): Promise<AuthResult> =>
    throttled(ip, () => {
      if (req.username !== undefined) return runChain(providers, req);
      // 3.1.1 has no "missing credentials" code; 0x04 is for malformed ones, and an anonymous
      // client is simply not authorized to connect (mosquitto answers the same).
      return {
        ok: false,
        reasonCode: CONNACK_NOT_AUTHORIZED,
        reason: "not authorized (no username, and mqtt-password-must is true)",
      } as AuthResult;
    }, (r) => !r.ok);

  const authenticator: Authenticator = {
    authenticate: (req: AuthRequest): Promise<AuthResult> | AuthResult => {
      if (!config.passwordMust) return { ok: true };
      const ip = ipOf(req.remoteAddress);
      // Exempt addresses keep the per-attempt back-off but are neither serialised nor bounded:
      // behind a local proxy one bad client must not make everyone else's login wait in line.
      if (!limited(ip)) return attempt(req, ip);
      const queued = queue.run(ip, () => attempt(req, ip));
      if (queued) return queued;
      queueFull(
        `refusing authentication attempts from ${ip}: ${config.authMaxPendingPerIp} already ` +
          `pending (mqttwk.broker.auth.max-pending-per-ip)`,
      );
      // Server unavailable, not bad credentials: nothing was checked, and a device that sees
      // 0x04 may stop retrying for good.
      return {
        ok: false,
        reasonCode: CONNACK_SERVER_UNAVAILABLE,
        reason: `too many pending authentication attempts from ${ip}`,
      };
    },
  };

  /**
   * Each step of an enhanced exchange is one attempt for the back-off and the per-address queue,
   * like a password check: N parallel SCRAM guesses from one address wait N delays.
   */
  const scramStep =
    (exchange: AuthExchange, ip: string) => (data: Uint8Array | undefined): Promise<AuthStep> => {
      const run = () => throttled(ip, () => exchange.step(data), (r) => r.status === "failure");
      if (!limited(ip)) return run();
      const queued = queue.run(ip, run);
      if (queued) return queued;
      queueFull(
        `refusing authentication attempts from ${ip}: ${config.authMaxPendingPerIp} already ` +
          `pending (mqttwk.broker.auth.max-pending-per-ip)`,
      );
      return Promise.resolve({
        status: "failure",
        reasonCode: 0x88, // Server unavailable, as CONNACK 0x03 for a password.
        reason: `too many pending authentication attempts from ${ip}`,
      });
    };
  const enhancedAuthenticator: EnhancedAuthenticator | undefined = scram && {
    methods: [SCRAM_SHA_256],
    start(req) {
      const exchange = new ScramServerExchange(scram);
      return { step: scramStep(exchange, ipOf(req.remoteAddress)) };
    },
  };

  let admit: Security["admit"];
  if (config.authMaxConnectionRate > 0) {
    const limiter = new ConnectionRateLimiter(
      config.authMaxConnectionRate,
      config.authConnectionBurst,
    );
    admit = (remoteAddress) => {
      const ip = ipOf(remoteAddress);
      if (!limited(ip) || limiter.take(ip)) return null;
      return `connection rate limit for ${ip} exceeded ` +
        `(${config.authMaxConnectionRate}/s, burst ${config.authConnectionBurst})`;
    };
  }

  return {
    authenticator,
    authorizer: checker ?? allowAll,
    enhancedAuthenticator,
    admit,
    async reload() {
      const next = await loadAll();
      next.installs.forEach((install) => install());
      if (checker && next.acl) checker.replace(next.acl);
      log.info(
        `reloaded ${
          [
            ...providers.map((p) => p.name),
            ...(scram ? ["scram"] : []),
            ...(checker ? ["acl"] : []),
          ].join(", ") ||
          "nothing (no auth files configured)"
        }`,
      );
    },
  };
}
