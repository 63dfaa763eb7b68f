/** Routes about messages: retained messages (list, get, delete) and publish. */
import { isValidFilter } from "../broker/topic.ts";
import type { ApiEnv } from "./context.ts";
import { ApiError, field, json, page, readObject } from "./json.ts";
import { messageView, payloadFrom, propertiesFromJson } from "./message_json.ts";
import type { Route } from "./router.ts";

/** The retained and publish routes. */
export function messageRoutes(env: ApiEnv): Route[] {
  const ops = env.ops;
  return [
    {
      method: "GET",
      pattern: "/api/v1/retained",
      access: "read",
      summary: "Retained messages matching a filter (default #), paged",
      handle: (req) => {
        const filter = req.query.get("filter") || "#";
        if (!isValidFilter(filter)) throw new ApiError(400, "invalid topic filter");
        return json(200, page(req.query, ops.retained(filter).map(messageView)));
      },
    },
    {
      method: "GET",
      pattern: "/api/v1/retained/:topic",
      access: "read",
      summary: "The retained message of one topic (URL-encoded as one segment)",
      handle: (req) => {
        const m = ops.retainedOf(req.params.topic);
        if (!m) throw new ApiError(404, "no retained message on this topic");
        return json(200, messageView(m));
      },
    },
    {
      method: "DELETE",
      pattern: "/api/v1/retained/:topic",
      access: "admin",
      summary: "Delete the retained message of one topic",
      handle: async (req) => {
        const topic = req.params.topic;
        if (!(await ops.deleteRetained(topic))) {
          throw new ApiError(404, "no retained message on this topic");
        }
        return json(200, { deleted: true }, `retained ${JSON.stringify(topic)}`);
      },
    },
    {
      method: "POST",
      pattern: "/api/v1/publish",
      access: "admin",
      summary: "Publish a message with the guarantees of a client's PUBLISH",
      handle: async (req, ctx) => {
        const o = readObject(req);
        for (const k of Object.keys(o)) {
          if (!["topic", "payload", "encoding", "qos", "retain", "properties"].includes(k)) {
            throw new ApiError(400, `unknown field "${k}"`);
          }
        }
        const topic = field.string(o, "topic", true)!;
        const payload = payloadFrom(field.string(o, "payload") ?? "", field.string(o, "encoding"));
        const qos = (field.int(o, "qos", 0, 2) ?? 0) as 0 | 1 | 2;
        const retain = field.bool(o, "retain") ?? false;
        const properties = propertiesFromJson(o.properties);
        await ops.publish({
          topic,
          payload,
          qos,
          retain,
          properties,
          by: {
            username: ctx.role === "open" ? undefined : ctx.user,
            remoteAddress: req.remoteAddress,
          },
        });
        return json(
          200,
          { ok: true },
          `topic ${JSON.stringify(topic)} qos ${qos}${retain ? " retained" : ""} ` +
            `${payload.byteLength} bytes`,
        );
      },
    },
  ];
}
