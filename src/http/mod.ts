/**
 * The HTTP side of the broker on `server.port`: /metrics and /health (unchanged, no login), the
 * dashboard's files, the admin REST API under /api/v1 and the original MqttWk API under
 * /open/api/mqttwk, on the broker's guarded TCP listener (sockets counted from the first byte,
 * a timeout per request). Every API route is authenticated (auth.ts), read routes need the read
 * or admin role, the rest admin; each admin action is logged as an audit line.
 */
import { AdminRefusal } from "../broker/admin.ts";
import type { Broker } from "../broker/broker.ts";
import type { Logger } from "../log.ts";
import { answer as metricsAnswer, type HealthSource } from "../metrics/http.ts";
import type { Front, Guard } from "../transport/listening.ts";
import { listenTcp } from "../transport/tcp.ts";
import type { HttpAuth, Principal } from "./auth.ts";
import type { ApiEnv } from "./context.ts";
import { ApiError } from "./json.ts";
import { legacyRoutes } from "./routes_legacy.ts";
import { openApiRoute } from "./openapi.ts";
import { type Route, Router } from "./router.ts";
import { clientRoutes } from "./routes_clients.ts";
import { messageRoutes } from "./routes_messages.ts";
import { statusRoutes } from "./routes_status.ts";
import { errorBody, type HttpRequest, type HttpResponse, serveHttp } from "./server.ts";
import { serveStatic } from "./static.ts";
import { StatsFeed } from "./stats_feed.ts";

/** Settings of the HTTP listener. */
export interface HttpSettings {
  hostname: string;
  port: number;
  /** Seconds a request may take to arrive. */
  requestTimeout: number;
  maxBody: number;
  guard?: Guard;
}

/** Every route of the API, in matching order. */
export function allRoutes(env: ApiEnv, feed: StatsFeed): Route[] {
  const routes = [
    ...statusRoutes(env, feed),
    ...clientRoutes(env),
    ...messageRoutes(env),
    ...legacyRoutes(env),
  ];
  return [...routes, openApiRoute()];
}

/** The request handler of the HTTP side, without the socket (tests may call it directly). */
export class HttpApi {
  readonly router: Router;
  readonly feed: StatsFeed;

  constructor(
    readonly env: ApiEnv,
    readonly auth: HttpAuth,
    readonly broker: Broker,
    readonly sources: HealthSource[],
  ) {
    this.feed = new StatsFeed(env.ops);
    this.router = new Router(allRoutes(env, this.feed));
  }

  get log(): Logger {
    return this.env.log;
  }

  /** Answers one request. */
  async handle(req: HttpRequest): Promise<HttpResponse> {
    if (req.path === "/metrics" || req.path === "/health") {
      const a = metricsAnswer(
        { method: req.method, target: req.path, version: "1.1", headers: req.headers },
        this.broker,
        this.sources,
      );
      return { status: a.status, headers: { "content-type": a.type }, body: a.body };
    }
    if (req.method === "GET" || req.method === "HEAD") {
      const file = await serveStatic(req.path);
      if (file) return file;
    }
    const m = this.router.match(req.method, req.path);
    if ("status" in m) {
      const res = errorBody(m.status, m.message);
      if (m.allow) res.headers = { ...res.headers, allow: m.allow.join(", ") };
      return res;
    }
    const { route, params } = m;
    let principal: Principal = { user: "anonymous", role: "read", via: "open" };
    if (route.access !== "public") {
      const a = await this.auth.authenticate(req);
      if (!a.ok) {
        if (req.headers.has("authorization")) {
          this.log.warn(
            `http: refused login from ${req.remoteAddress} for ${req.method} ${req.path}: ` +
              a.message,
          );
        }
        const res = this.#error(route, a.status, a.message);
        const headers = { ...res.headers };
        if (a.status === 401 && !req.headers.has("x-requested-with")) {
          headers["www-authenticate"] = 'Basic realm="mqttwk"';
        }
        if (a.retryAfter !== undefined) headers["retry-after"] = String(a.retryAfter);
        return { ...res, headers };
      }
      principal = a.principal;
      if (route.access === "admin" && principal.role !== "admin") {
        this.#audit(principal, req, "refused: needs the admin role", 403);
        return this.#error(route, 403, "this action needs the admin role");
      }
    }
    const ctx = {
      user: principal.user,
      role: principal.via === "open" ? "open" as const : principal.role,
    };
    let res: HttpResponse;
    try {
      res = await route.handle({ ...req, params }, ctx);
    } catch (err) {
      if (err instanceof ApiError || err instanceof AdminRefusal) {
        res = this.#error(route, err.status, err.message);
      } else {
        this.log.error(`http: ${req.method} ${req.path}: ${(err as Error)?.stack ?? err}`);
        res = this.#error(route, 500, "internal error");
      }
    }
    if (route.access === "admin") this.#audit(principal, req, res.audit, res.status);
    return res;
  }

  /** One audit line: who (user and how authenticated), from where, what, and the outcome. */
  #audit(who: Principal, req: HttpRequest, what: string | undefined, status: number): void {
    // Quoted with JSON.stringify and escaped again by the logger: nothing from the request can
    // end the line or start a forged one.
    this.log.info(
      `audit: user ${JSON.stringify(who.user)} (${who.via}) from ${req.remoteAddress}: ` +
        `${req.method} ${JSON.stringify(req.path)}${what ? ` ${what}` : ""} -> ${status}`,
    );
  }

  #error(route: Route, status: number, message: string): HttpResponse {
    const res = errorBody(status, message);
    if (route.legacy) res.body = JSON.stringify({ code: -1, msg: message, error: message });
    return res;
  }

  close(): void {
    this.feed.close();
  }
}

/** Serves `api` on its own guarded TCP listener; resolves once bound. */
export async function listenHttp(
  settings: HttpSettings,
  api: HttpApi,
  log: Logger,
): Promise<Front> {
  const limits = {
    maxBody: settings.maxBody,
    requestTimeoutMs: settings.requestTimeout * 1000,
    maxRequests: 1000,
  };
  const front = listenTcp(
    { hostname: settings.hostname, port: settings.port, name: "http", guard: settings.guard },
    (conn) => serveHttp(conn, limits, (req) => api.handle(req), log),
    log,
  );
  await front.ready;
  log.info(`listening http ${front.address} (/metrics, /health, /api/v1, dashboard at /)`);
  return front;
}
