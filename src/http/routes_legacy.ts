/**
 * The original MqttWk HTTP API, compatible: `/open/api/mqttwk/send` and `/open/api/mqttwk/info`,
 * any method, with the original's request and reply shapes. Unlike the original, a sent message
 * is UTF-8, retained when asked, delivered at QoS 1/2 with the broker's guarantees (the reply
 * waits for them), to every node, and seen by the Kafka bridge; DUP is only kept for QoS 1/2;
 * /info lists each session once across the cluster with its full client id.
 */
import type { ApiEnv } from "./context.ts";
import { ApiError, json, readObject } from "./json.ts";
import type { Route } from "./router.ts";

/** `true`/`false` or their strings (the original's JSON binding accepted both). */
function loose(v: unknown, name: string): boolean {
  if (v === undefined || v === null || v === "") return false;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw new ApiError(400, `${name} must be true or false`);
}

/** The original's two routes. */
export function legacyRoutes(env: ApiEnv): Route[] {
  return [
    {
      method: "*",
      pattern: "/open/api/mqttwk/send",
      access: "admin",
      legacy: true,
      summary: "Original MqttWk API: publish {topic, message, qos, retain, dup}",
      handle: async (req, ctx) => {
        // A body when there is one, else query parameters (a plain GET works too).
        const o: Record<string, unknown> = req.body.byteLength
          ? readObject(req)
          : Object.fromEntries(req.query);
        const topic = o.topic;
        if (typeof topic !== "string" || topic === "") {
          throw new ApiError(400, "topic is required");
        }
        const m = o.message ?? "";
        const message = typeof m === "string" ? m : JSON.stringify(m);
        const q = o.qos ?? 0;
        const qos = typeof q === "string" && /^[0-2]$/.test(q) ? Number(q) : q;
        if (qos !== 0 && qos !== 1 && qos !== 2) throw new ApiError(400, "qos must be 0, 1 or 2");
        const retain = loose(o.retain, "retain");
        const dup = loose(o.dup, "dup");
        await env.ops.publish({
          topic,
          payload: new TextEncoder().encode(message),
          qos,
          retain,
          // DUP on a QoS 0 message is a protocol error (MQTT-3.3.1-2); the original sent it.
          dup: dup && qos > 0,
          by: {
            username: ctx.role === "open" ? undefined : ctx.user,
            remoteAddress: req.remoteAddress,
          },
        });
        return json(
          200,
          { code: 0, msg: "success" },
          `topic ${JSON.stringify(topic)} qos ${qos}${retain ? " retained" : ""}`,
        );
      },
    },
    {
      method: "*",
      pattern: "/open/api/mqttwk/info",
      access: "read",
      legacy: true,
      summary: "Original MqttWk API: sessions with their subscribed topics",
      handle: async () => {
        const sessions = await env.ops.sessions();
        const list = sessions.map((s) => ({
          clientId: s.clientId,
          topics: s.filters.map((f) => f.filter),
        }));
        return json(200, { code: 0, msg: "", data: { total: list.length, list } });
      },
    },
  ];
}
