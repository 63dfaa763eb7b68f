/** Routes about connections and sessions: clients, one client, kick, sessions, subscriptions. */
import type { ApiEnv } from "./context.ts";
import { ApiError, json, page } from "./json.ts";
import type { Route } from "./router.ts";

/** The client, session and subscription routes. */
export function clientRoutes(env: ApiEnv): Route[] {
  const ops = env.ops;
  return [
    {
      method: "GET",
      pattern: "/api/v1/clients",
      access: "read",
      summary: "Connected clients (paged; filters prefix, user, address, protocol)",
      handle: async (req) => {
        const q = req.query;
        const prefix = q.get("prefix") ?? "";
        const user = q.get("user");
        const address = q.get("address");
        const protocol = q.get("protocol");
        if (protocol && !/^[345]$/.test(protocol)) {
          throw new ApiError(400, 'query parameter "protocol" must be 3, 4 or 5');
        }
        const items = (await ops.clients()).filter((c) =>
          c.clientId.startsWith(prefix) &&
          (!user || c.username === user) &&
          (!address || c.address.startsWith(address)) &&
          (!protocol || c.protocolVersion === Number(protocol))
        );
        return json(200, page(q, items));
      },
    },
    {
      method: "GET",
      pattern: "/api/v1/clients/:clientId",
      access: "read",
      summary: "One connected client with its subscriptions",
      handle: async (req) => {
        const c = await ops.client(req.params.clientId);
        if (!c) throw new ApiError(404, "no such client connected");
        return json(200, c);
      },
    },
    {
      method: "DELETE",
      pattern: "/api/v1/clients/:clientId",
      access: "admin",
      summary: "Disconnect a client (anywhere in the cluster)",
      handle: async (req) => {
        const id = req.params.clientId;
        if (!(await ops.kick(id))) throw new ApiError(404, "no such client connected");
        return json(200, { disconnected: true }, `client ${JSON.stringify(id)}`);
      },
    },
    {
      method: "GET",
      pattern: "/api/v1/sessions",
      access: "read",
      summary: "Sessions, connected and offline (paged; filters prefix, connected)",
      handle: async (req) => {
        const q = req.query;
        const prefix = q.get("prefix") ?? "";
        const connected = q.get("connected");
        if (connected && connected !== "true" && connected !== "false") {
          throw new ApiError(400, 'query parameter "connected" must be true or false');
        }
        const items = (await ops.sessions())
          .filter((s) =>
            s.clientId.startsWith(prefix) && (!connected || String(s.connected) === connected)
          )
          .map(({ filters: _, ...s }) => s);
        return json(200, page(q, items));
      },
    },
    {
      method: "DELETE",
      pattern: "/api/v1/sessions/:clientId",
      access: "admin",
      summary: "End a session (its client is disconnected first)",
      handle: async (req) => {
        const id = req.params.clientId;
        if (!(await ops.deleteSession(id))) throw new ApiError(404, "no such session");
        return json(200, { deleted: true }, `session ${JSON.stringify(id)}`);
      },
    },
    {
      method: "GET",
      pattern: "/api/v1/subscriptions",
      access: "read",
      summary: "Subscriptions (paged; filters clientId, filter)",
      handle: async (req) => {
        const q = req.query;
        const clientId = q.get("clientId");
        const filter = q.get("filter");
        const items = (await ops.sessions())
          .filter((s) => !clientId || s.clientId === clientId)
          .flatMap((s) => s.filters.map((f) => ({ clientId: s.clientId, node: s.node, ...f })))
          .filter((s) => !filter || s.filter === filter);
        return json(200, page(q, items));
      },
    },
  ];
}
