/**
 * The HTTP port (`http-enabled`): /metrics, /health, the admin API, the original API and the
 * dashboard (src/http/). Decides authentication: API keys and password-file users with a role;
 * with neither the API is open, which is allowed on loopback only (warned), and refused with an
 * error naming `mqttwk.broker.http-host` anywhere else.
 */
import { join } from "node:path";
import type { Broker } from "../broker/broker.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";
import { HttpAuth, isLoopbackHost } from "../http/auth.ts";
import type { ApiEnv, ListenerView } from "../http/context.ts";
import { HttpApi, listenHttp } from "../http/mod.ts";
import { answerLocally, type ClusterGather, type NodeRequest, Operations } from "../http/ops.ts";
import { VERSION } from "../http/version.ts";
import type { HealthSource } from "../metrics/http.ts";
import type { Front, Guard, Listening } from "../transport/listening.ts";
import { listenerSettings } from "../transport/settings.ts";

/** What the HTTP side needs from the app besides the broker. */
export interface HttpWiring {
  broker: Broker;
  sources: HealthSource[];
  listening(): readonly Listening[];
  reload(): Promise<boolean>;
  /** Health of the cluster link and the Kafka bridge, when present. */
  clusterHealthy?: () => boolean;
  kafkaHealthy?: () => boolean;
  /** Builds the cluster-wide gathering from this node's answerer (cluster mode only). */
  gather?: (
    local: (req: NodeRequest) => unknown,
  ) => Promise<{ gather: ClusterGather; stop(): Promise<void> }>;
  guard?: Guard;
}

/** The running HTTP side. */
export interface HttpSide {
  front: Front;
  api: HttpApi;
  auth: HttpAuth;
  /** Stops serving and the cluster's admin requests. */
  close(): Promise<void>;
}

/** The file of hashed API keys the configuration names. */
export function apiKeysFile(config: Config): string {
  return config.httpApiKeysFile || join(config.dataDir, "api-keys");
}

/** Checks the authentication settings, then serves the HTTP port; undefined when it is off. */
export async function serveHttp(
  config: Config,
  w: HttpWiring,
  log: Logger,
): Promise<HttpSide | undefined> {
  if (!config.httpEnabled) return undefined;
  const auth = new HttpAuth({
    keysFile: apiKeysFile(config),
    passwordFile: config.authPasswordFile,
    adminUsers: config.httpAdminUsers,
    readUsers: config.httpReadUsers,
  });
  await auth.reload();
  const roles = [...config.httpAdminUsers, ...config.httpReadUsers];
  if (roles.length && !config.authPasswordFile) {
    throw new Error(
      "mqttwk.http.admin-users/read-users name users of auth.password-file, which is not set",
    );
  }
  if (!auth.configured) {
    if (!isLoopbackHost(config.httpHost)) {
      throw new Error(
        `mqttwk.broker.http-host is ${JSON.stringify(config.httpHost)}, not loopback, and the ` +
          `HTTP API has no authentication: create an API key (deno task api-key create NAME ` +
          `--role admin) or give password-file users a role (mqttwk.http.admin-users)`,
      );
    }
    log.warn(
      `http: no API keys and no HTTP users configured: the HTTP API on ${config.httpHost} is ` +
        `open to every local process (deno task api-key create NAME --role admin to close it)`,
    );
  }
  const broker = w.broker;
  const startedAt = Date.now();
  const healthy = () => w.clusterHealthy?.() ?? true;
  const local = (req: NodeRequest) => answerLocally(broker, startedAt, healthy, req);
  const rpc = w.gather ? await w.gather(local) : undefined;
  const ops = new Operations(broker.admin, local, rpc?.gather);
  const env: ApiEnv = {
    ops,
    log,
    version: VERSION,
    nodeId: broker.nodeId,
    startedAt,
    listeners: () => listenerViews(config, w.listening()),
    store: () => ({
      kind: config.clusterOn ? "redis" : config.persistence,
      healthy: healthy(),
    }),
    kafka: () => ({ enabled: w.kafkaHealthy !== undefined, healthy: w.kafkaHealthy?.() ?? true }),
    reload: () => w.reload(),
  };
  const api = new HttpApi(env, auth, broker, w.sources);
  let front: Front;
  try {
    front = await listenHttp(
      {
        hostname: config.httpHost,
        port: config.httpPort,
        requestTimeout: config.connectTimeout,
        maxBody: config.httpMaxBody,
        guard: w.guard,
      },
      api,
      log,
    );
  } catch (err) {
    await rpc?.stop();
    throw err;
  }
  return {
    front,
    api,
    auth,
    close: async () => {
      api.close();
      front.close();
      await rpc?.stop();
    },
  };
}

/** The MQTT listeners as /api/v1/status lists them (in the order they were started). */
function listenerViews(config: Config, bound: readonly Listening[]): ListenerView[] {
  const s = listenerSettings(config);
  const kinds: { kind: string; host: string; path?: string }[] = [];
  if (s.tcp) kinds.push({ kind: "tcp", host: s.tcp.host });
  if (s.ws) kinds.push({ kind: "ws", host: s.ws.host, path: s.ws.path });
  if (s.tls) kinds.push({ kind: "tls", host: s.tls.host });
  if (s.wss) kinds.push({ kind: "wss", host: s.wss.host, path: s.wss.path });
  return bound.map((l, i) => ({
    kind: kinds[i]?.kind ?? "tcp",
    host: kinds[i]?.host ?? l.address.slice(0, l.address.lastIndexOf(":")),
    port: l.port,
    ...(kinds[i]?.path ? { path: kinds[i].path } : {}),
  }));
}
