/**
 * The OpenAPI 3.1 description of the HTTP API, served at /api/v1/openapi.json. Written by hand;
 * tests/http/openapi.test.ts checks that every routed path and method is in it.
 */
import type { Route } from "./router.ts";
import { json } from "./json.ts";

type Obj = Record<string, unknown>;

const ref = (name: string): Obj => ({ $ref: `#/components/schemas/${name}` });
const str = { type: "string" };
const int = { type: "integer" };
const bool = { type: "boolean" };
const obj = (properties: Obj, required?: string[]): Obj => ({
  type: "object",
  properties,
  ...(required ? { required } : {}),
});
const pageOf = (item: Obj): Obj => obj({ total: int, items: { type: "array", items: item } });
const ok = (schema: Obj, description = "OK"): Obj => ({
  description,
  content: { "application/json": { schema } },
});
const errors = (...codes: number[]): Obj =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/E${c}` }]));
const q = (name: string, schema: Obj, description: string): Obj => ({
  name,
  in: "query",
  required: false,
  schema,
  description,
});
const p = (name: string, description: string): Obj => ({
  name,
  in: "path",
  required: true,
  schema: str,
  description,
});
const paging = [
  q("limit", { ...int, minimum: 1, maximum: 1000, default: 50 }, "Page size"),
  q("offset", { ...int, minimum: 0, default: 0 }, "Items to skip"),
];
const read = errors(400, 401, 403, 429);
const admin = errors(400, 401, 403, 429);

const CLIENT = {
  clientId: str,
  username: { type: ["string", "null"] },
  address: str,
  listener: str,
  protocolVersion: int,
  node: str,
  keepalive: int,
  connectedAt: { ...int, description: "ms since epoch" },
  inflight: int,
  queued: int,
};

const PROPERTIES = obj({
  payloadFormatIndicator: { enum: [0, 1] },
  messageExpiryInterval: int,
  contentType: str,
  responseTopic: str,
  correlationData: { ...str, description: "base64" },
  userProperties: {
    description: '[["name","value"], ...]; on input also {"name":"value"}',
    oneOf: [
      { type: "array", items: { type: "array", items: str, minItems: 2, maxItems: 2 } },
      { type: "object", additionalProperties: str },
    ],
  },
});

/** The document. */
export const OPENAPI: Obj = {
  openapi: "3.1.0",
  info: {
    title: "MqttWk HTTP API",
    version: "1",
    description: "Admin REST API, live stats, and the original MqttWk API. Authenticate with " +
      "an API key (Bearer) or a password-file user (Basic); GET routes need the read role, " +
      'the others admin. Errors are {"error": message}.',
  },
  security: [{ bearer: [] }, { basic: [] }],
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "deno task api-key create" },
      basic: { type: "http", scheme: "basic", description: "users of auth.password-file" },
    },
    schemas: {
      Error: obj({ error: str }, ["error"]),
      Client: obj({ ...CLIENT, subscriptions: int }),
      Subscription: obj({
        filter: str,
        qos: int,
        noLocal: bool,
        retainAsPublished: bool,
        retainHandling: int,
        identifier: { type: ["integer", "null"] },
      }),
      ClientDetails: obj({
        ...CLIENT,
        subscriptions: { type: "array", items: ref("Subscription") },
      }),
      Session: obj({
        clientId: str,
        connected: bool,
        node: str,
        subscriptions: int,
        queued: int,
        expiryInterval: int,
      }),
      Retained: obj({
        topic: str,
        qos: int,
        size: int,
        payload: str,
        encoding: { enum: ["utf8", "base64"] },
        properties: PROPERTIES,
        createdAt: int,
      }),
      Properties: PROPERTIES,
    },
    responses: Object.fromEntries(
      [
        [400, "Bad request (bad JSON, bad field, bad parameter)"],
        [401, "Authentication required or failed"],
        [403, "Not allowed for this role, or refused (e.g. $SYS, ACL)"],
        [404, "Not found"],
        [413, "Body too large"],
        [429, "Too many failed logins from this address"],
      ].map(([c, d]) => [`E${c}`, ok(ref("Error"), d as string)]),
    ),
  },
  paths: {
    "/api/v1/whoami": {
      get: {
        summary: "The caller's name and role",
        responses: { 200: ok(obj({ user: str, role: { enum: ["admin", "read"] } })), ...read },
      },
    },
    "/api/v1/status": {
      get: {
        summary: "Broker and cluster status (cluster totals in cluster mode)",
        responses: {
          200: ok(obj({
            version: str,
            node: str,
            uptimeSeconds: int,
            listeners: {
              type: "array",
              items: obj({ kind: str, host: str, port: int, path: str }),
            },
            store: obj({ kind: str, healthy: bool }),
            kafka: obj({ enabled: bool, healthy: bool }),
            cluster: obj({
              enabled: bool,
              nodes: {
                type: "array",
                items: obj({ id: str, healthy: bool, connections: int, uptimeSeconds: int }),
              },
            }),
            stats: obj({
              connections: int,
              sessions: int,
              subscriptions: int,
              retained: int,
              messagesIn: int,
              messagesOut: int,
              dropped: int,
            }),
          })),
          ...read,
        },
      },
    },
    "/api/v1/stats/stream": {
      get: {
        summary: "Server-sent events: one `data: {json}` per second",
        responses: {
          200: {
            description: "text/event-stream of {t, connections, messagesInPerSec, " +
              "messagesOutPerSec, droppedPerSec, sessions, retained}",
            content: { "text/event-stream": { schema: str } },
          },
          ...read,
        },
      },
    },
    "/api/v1/reload": {
      post: {
        summary: "Reload certificates, password and ACL files (what SIGHUP does)",
        responses: { 200: ok(obj({ reloaded: bool })), ...admin },
      },
    },
    "/api/v1/clients": {
      get: {
        summary: "Connected clients, whole cluster",
        parameters: [
          q("prefix", str, "Client id prefix"),
          q("user", str, "Username"),
          q("address", str, "Address prefix"),
          q("protocol", { enum: ["3", "4", "5"] }, "Protocol level"),
          ...paging,
        ],
        responses: { 200: ok(pageOf(ref("Client"))), ...read },
      },
    },
    "/api/v1/clients/{clientId}": {
      parameters: [p("clientId", "Client id")],
      get: {
        summary: "One connected client with its subscriptions",
        responses: { 200: ok(ref("ClientDetails")), ...read, ...errors(404) },
      },
      delete: {
        summary: "Disconnect a client, wherever in the cluster it is connected",
        responses: { 200: ok(obj({ disconnected: bool })), ...admin, ...errors(404) },
      },
    },
    "/api/v1/sessions": {
      get: {
        summary: "Sessions, connected and offline",
        parameters: [
          q("prefix", str, "Client id prefix"),
          q("connected", { enum: ["true", "false"] }, "Only connected / offline"),
          ...paging,
        ],
        responses: { 200: ok(pageOf(ref("Session"))), ...read },
      },
    },
    "/api/v1/sessions/{clientId}": {
      parameters: [p("clientId", "Client id")],
      delete: {
        summary: "End a session (disconnecting its client first)",
        responses: { 200: ok(obj({ deleted: bool })), ...admin, ...errors(404) },
      },
    },
    "/api/v1/subscriptions": {
      get: {
        summary: "Subscriptions by client or by filter",
        parameters: [q("clientId", str, "Client id"), q("filter", str, "Exact filter"), ...paging],
        responses: {
          200: ok(pageOf(obj({ clientId: str, node: str, filter: str, qos: int }))),
          ...read,
        },
      },
    },
    "/api/v1/retained": {
      get: {
        summary: "Retained messages matching a filter",
        parameters: [q("filter", { ...str, default: "#" }, "Topic filter"), ...paging],
        responses: { 200: ok(pageOf(ref("Retained"))), ...read },
      },
    },
    "/api/v1/retained/{topic}": {
      parameters: [p("topic", "Topic, URL-encoded as one segment (a/b → a%2Fb)")],
      get: {
        summary: "The retained message of a topic",
        responses: { 200: ok(ref("Retained")), ...read, ...errors(404) },
      },
      delete: {
        summary: "Delete the retained message of a topic",
        responses: { 200: ok(obj({ deleted: bool })), ...admin, ...errors(404) },
      },
    },
    "/api/v1/publish": {
      post: {
        summary: "Publish with the guarantees of a client's PUBLISH (answered once accepted)",
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: obj({
                topic: str,
                payload: str,
                encoding: { enum: ["utf8", "base64"], default: "utf8" },
                qos: { enum: [0, 1, 2], default: 0 },
                retain: { ...bool, default: false },
                properties: ref("Properties"),
              }, ["topic"]),
            },
          },
        },
        responses: { 200: ok(obj({ ok: bool })), ...admin, ...errors(413) },
      },
    },
    "/api/v1/openapi.json": {
      get: {
        summary: "This document",
        security: [],
        responses: { 200: ok({ type: "object" }) },
      },
    },
    ...legacyPaths(),
  },
};

function legacyPaths(): Obj {
  const reply = ok(obj({ code: int, msg: str }));
  const send = {
    summary: "Original MqttWk API: publish (any method; JSON body or query parameters)",
    requestBody: {
      content: {
        "application/json": {
          schema: obj({
            topic: str,
            message: str,
            qos: { enum: [0, 1, 2] },
            retain: bool,
            dup: bool,
          }, ["topic"]),
        },
      },
    },
    responses: { 200: reply, ...admin },
  };
  const info = {
    summary: "Original MqttWk API: sessions and their topics (any method)",
    responses: {
      200: ok(obj({
        code: int,
        msg: str,
        data: obj({
          total: int,
          list: {
            type: "array",
            items: obj({ clientId: str, topics: { type: "array", items: str } }),
          },
        }),
      })),
      ...read,
    },
  };
  const any = (op: Obj) =>
    Object.fromEntries(["get", "post", "put", "delete", "patch"].map((m) => [m, op]));
  return { "/open/api/mqttwk/send": any(send), "/open/api/mqttwk/info": any(info) };
}

/** The route serving the document (no login: it holds no data). */
export function openApiRoute(): Route {
  return {
    method: "GET",
    pattern: "/api/v1/openapi.json",
    access: "public",
    summary: "OpenAPI 3.1 description of this API",
    handle: () => json(200, OPENAPI),
  };
}
