/** Routes about the broker as a whole: whoami, status, the live stats stream, reload. */
import type { ApiEnv } from "./context.ts";
import { json } from "./json.ts";
import type { Route } from "./router.ts";
import { errorBody } from "./server.ts";
import { MAX_STREAMS, type StatsFeed } from "./stats_feed.ts";

/** The status routes. */
export function statusRoutes(env: ApiEnv, feed: StatsFeed): Route[] {
  return [
    {
      method: "GET",
      pattern: "/api/v1/whoami",
      access: "read",
      summary: "The caller's name and role",
      handle: (_req, ctx) =>
        json(200, { user: ctx.user, role: ctx.role === "open" ? "admin" : ctx.role }),
    },
    {
      method: "GET",
      pattern: "/api/v1/status",
      access: "read",
      summary: "Broker and cluster status",
      handle: async () => {
        const nodes = await env.ops.nodes();
        const sum = (f: (n: (typeof nodes)[number]) => number) =>
          nodes.reduce((a, n) => a + f(n), 0);
        const me = nodes.find((n) => n.id === env.nodeId);
        return json(200, {
          version: env.version,
          node: env.nodeId,
          uptimeSeconds: me?.uptimeSeconds ?? Math.floor((Date.now() - env.startedAt) / 1000),
          listeners: env.listeners(),
          store: env.store(),
          kafka: env.kafka(),
          cluster: {
            enabled: env.ops.clustered,
            nodes: nodes.map((n) => ({
              id: n.id,
              healthy: n.healthy,
              connections: n.connections,
              uptimeSeconds: n.uptimeSeconds,
            })),
          },
          stats: {
            connections: sum((n) => n.connections),
            sessions: sum((n) => n.sessions),
            subscriptions: sum((n) => n.subscriptions),
            // Every node holds every retained message: the largest count is the cluster's.
            retained: nodes.length ? Math.max(...nodes.map((n) => n.retained)) : 0,
            messagesIn: sum((n) => n.messagesIn),
            messagesOut: sum((n) => n.messagesOut),
            dropped: sum((n) => n.dropped),
          },
        });
      },
    },
    {
      method: "GET",
      pattern: "/api/v1/stats/stream",
      access: "read",
      summary: "Server-sent events, one stats sample per second",
      handle: () => {
        if (feed.open >= MAX_STREAMS) return errorBody(503, "too many open stats streams");
        return {
          status: 200,
          headers: { "content-type": "text/event-stream; charset=utf-8" },
          stream: (out) => {
            out.write(": mqttwk stats\n\n");
            if (!feed.add(out)) out.close();
          },
        };
      },
    },
    {
      method: "POST",
      pattern: "/api/v1/reload",
      access: "admin",
      summary: "Reload certificates, password and ACL files (as SIGHUP does)",
      handle: async () => {
        const ok = await env.reload();
        return ok
          ? json(200, { reloaded: true })
          : json(500, { error: "reload failed; the previous files stay in force (see the log)" });
      },
    },
  ];
}
