/**
 * Routes of the HTTP API: a method and a path pattern (`/api/v1/clients/:clientId`, one
 * URL-decoded segment per parameter) to a handler. Unknown paths are 404, known paths with
 * another method 405, undecodable segments 400.
 */
import type { HttpRequest, HttpResponse } from "./server.ts";

/** A request that matched a route, with its path parameters decoded. */
export interface Routed extends HttpRequest {
  params: Record<string, string>;
}

/** What a route needs: a role ("read" for GET-like, "admin" for changes) or none at all. */
export type Access = "public" | "read" | "admin";

/** One route. */
export interface Route {
  method: string;
  /** e.g. "/api/v1/clients/:clientId". */
  pattern: string;
  access: Access;
  /** Short description (also used in the audit line and the OpenAPI check). */
  summary: string;
  /** The original MqttWk API: errors answer `{"code":-1,"msg":...}` too. */
  legacy?: boolean;
  handle(req: Routed, ctx: RouteContext): HttpResponse | Promise<HttpResponse>;
}

/** Who is calling, as the handlers see it (for audit lines and ACL checks). */
export interface RouteContext {
  user: string;
  role: "admin" | "read" | "open";
}

/** The outcome of matching one request. */
export type Match =
  | { route: Route; params: Record<string, string> }
  | { status: 400 | 404 | 405; message: string; allow?: string[] };

/** Matches requests against a fixed list of routes. */
export class Router {
  readonly routes: readonly Route[];
  readonly #compiled: { route: Route; parts: string[] }[];

  constructor(routes: Route[]) {
    this.routes = routes;
    this.#compiled = routes.map((route) => ({ route, parts: route.pattern.split("/") }));
  }

  match(method: string, path: string): Match {
    const parts = path.split("/");
    const allow: string[] = [];
    for (const { route, parts: want } of this.#compiled) {
      if (want.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < want.length && ok; i++) {
        if (want[i].startsWith(":")) {
          if (parts[i] === "") ok = false;
          else {
            try {
              params[want[i].slice(1)] = decodeURIComponent(parts[i]);
            } catch {
              return { status: 400, message: `path segment ${i} is not valid URL encoding` };
            }
          }
        } else if (want[i] !== parts[i]) ok = false;
      }
      if (!ok) continue;
      if (
        route.method === "*" || route.method === method ||
        (method === "HEAD" && route.method === "GET")
      ) {
        return { route, params };
      }
      allow.push(route.method);
    }
    if (allow.length) return { status: 405, message: `use ${allow.join(" or ")}`, allow };
    return { status: 404, message: `no route for ${path.slice(0, 200)}` };
  }
}
