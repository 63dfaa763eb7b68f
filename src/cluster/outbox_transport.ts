/**
 * The outbox's transport over Redis: each batch leaves as one XADD to the target node's stream
 * (QoS 1/2) or one PUBLISH on its message channel (QoS 0), on the one connection that keeps their
 * order. The command is written around the batch in the outbox's own buffer
 * (redis/framed_command.ts), so the batch is not copied again on its way to the socket.
 */
import type { Buffer } from "node:buffer";
import type { RedisClient } from "../redis/conn.ts";
import { commandHead, FramedCommand, frameLastArgument } from "../redis/framed_command.ts";
import type { RedisKeys } from "../redis/keys.ts";
import { FRAMING_ROOM, type OutboxTransport } from "./outbox.ts";

/** The field of a stream entry holding the wire frame. */
export const FIELD = "m";

/** Heads kept per command and node (bounded by the cluster's size; cleared past this). */
const MAX_HEADS = 1024;

/** XADD and PUBLISH of the outbox's batches on `out`. */
export function redisOutboxTransport(
  out: RedisClient,
  keys: RedisKeys,
  streamMaxLen: number,
): OutboxTransport {
  const heads = new Map<string, { args: (string | number)[]; head: Uint8Array }>();
  const command = (kind: "xadd" | "publish", node: string) => {
    const k = kind + " " + node;
    let h = heads.get(k);
    if (h === undefined) {
      if (heads.size >= MAX_HEADS) heads.clear();
      const args = kind === "xadd"
        ? [keys.stream(node), "MAXLEN", "~", streamMaxLen, "*", FIELD]
        : [keys.channel(`node:${node}:m`)];
      h = { args, head: commandHead(kind, args) };
      heads.set(k, h);
    }
    return h;
  };
  const send = (kind: "xadd" | "publish", node: string, frame: Uint8Array): Promise<unknown> => {
    const { args, head } = command(kind, node);
    const around = new Uint8Array(
      frame.buffer,
      frame.byteOffset - FRAMING_ROOM,
      FRAMING_ROOM + frame.byteLength + 2,
    );
    const end = FRAMING_ROOM + frame.byteLength;
    const bytes = frameLastArgument(head, around, FRAMING_ROOM, end, FRAMING_ROOM);
    if (bytes !== null) {
      const c = new FramedCommand(kind, [...args, frame as Buffer], bytes);
      out.sendCommand(c);
      return c.promise;
    }
    // A head longer than the room (a very long key prefix or node id): ioredis builds it.
    return kind === "xadd"
      ? out.xadd(keys.stream(node), "MAXLEN", "~", streamMaxLen, "*", FIELD, frame as Buffer)
      : out.publish(keys.channel(`node:${node}:m`), frame as Buffer);
  };
  return {
    stream: (node, frame) => send("xadd", node, frame),
    channel: (node, frame) => send("publish", node, frame).catch(() => {}),
  };
}
