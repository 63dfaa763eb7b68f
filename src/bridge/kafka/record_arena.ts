/**
 * Writes a message's Kafka record (its tail: key, value, headers; see batch_wire.ts) the moment
 * the bridge accepts it, into large shared chunks of bytes. A queued record is then a few numbers
 * into a chunk: the message, its strings and the socket chunk its payload is a view of are free
 * at once, instead of surviving the garbage collector's young generation for the whole Kafka
 * round trip (which made collection the largest cost of at-least-once). The bytes are the ones
 * messageRecord describes (tests/bridge/kafka_record_batch.test.ts compares them).
 */
import { isMadeId, madeIdBytes } from "../../broker/made_id.ts";
import type { StoredMessage } from "../../broker/model.ts";
import { ByteWriter, FieldCache, readVarint, varintEnd } from "./byte_writer.ts";
import { writeJsonValue } from "./json_value.ts";
import type { RecordContext } from "./record_context.ts";

/** Bytes per chunk; a larger record gets a chunk of its own size. */
const CHUNK = 256 * 1024;

/** Topics and client ids of messages, ready to copy (each is written twice or more per record). */
const fields = new FieldCache();

/** A fixed header name, ready to copy. */
function name(n: string): Uint8Array {
  const w = new ByteWriter(n.length + 1);
  w.varString(n);
  return w.bytes().slice();
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const w = new ByteWriter(64);
  for (const p of parts) w.raw(p);
  return w.bytes().slice();
}

// messageRecord's seven headers, in its order.
const H_TOPIC = name("mqtt.topic");
const H_CLIENT = name("mqtt.client_id");
const H_NODE = name("mqttwk.node_id");
const H_TIME = name("mqttwk.timestamp");
const H_ID = name("mqttwk.message_id");
/** "mqtt.qos" = qos, "mqtt.retain" = retain, then the client id's name, per qos and retain. */
const QOS_RETAIN: Uint8Array[] = [];
for (const qos of [0, 1, 2]) {
  for (const retain of [false, true]) {
    QOS_RETAIN[qos * 2 + (retain ? 1 : 0)] = concat(
      name("mqtt.qos"),
      name(String(qos)),
      name("mqtt.retain"),
      name(String(retain)),
      H_CLIENT,
    );
  }
}
const NULL_KEY = new Uint8Array([1]); // zigzag -1

/** Where a record's tail was written. */
export interface TailRef {
  chunk: Uint8Array;
  at: number;
  length: number;
}

/**
 * The chunk being filled and what the previous record left to reuse. Consecutive messages of
 * one publisher on one topic (a burst, the common case) share the run of headers from the topic
 * to the timestamp's name: it is copied from the previous record instead of being written again
 * piece by piece.
 */
class Arena {
  #w = new ByteWriter(CHUNK);
  #topic = "";
  #topicBytes: Uint8Array = new Uint8Array();
  #client = "";
  #clientBytes: Uint8Array = new Uint8Array();
  #flags = -1;
  #ctx: RecordContext | null = null;
  #nodeBlockFor = "";
  #nodeBlock: Uint8Array = new Uint8Array();
  /** Where the previous record's header run is in the chunk (-1: none to reuse). */
  #runAt = -1;
  #runEnd = -1;
  /** The timestamp header's value for the millisecond last seen (many records share one). */
  #time = -1;
  #timeText: Uint8Array = new Uint8Array();

  write(
    msg: StoredMessage,
    clientId: string,
    ctx: RecordContext,
    valueLength: number,
    out: TailRef,
  ): void {
    // Room for the largest this record can be, so that it never moves once written.
    const most = valueLength + 3 * (2 * msg.topic.length + 2 * clientId.length + msg.id.length) +
      3 * ctx.nodeId.length + 256;
    let w = this.#w;
    if (w.pos + most > w.buf.length) {
      w = this.#w = new ByteWriter(Math.max(CHUNK, most));
      this.#runAt = -1;
    }
    if (msg.topic !== this.#topic) {
      this.#topic = msg.topic;
      this.#topicBytes = fields.get(msg.topic);
      this.#runAt = -1;
    }
    if (clientId !== this.#client) {
      this.#client = clientId;
      this.#clientBytes = fields.get(clientId);
      this.#runAt = -1;
    }
    const flags = msg.qos * 2 + (msg.retain ? 1 : 0);
    if (flags !== this.#flags || ctx !== this.#ctx) {
      this.#flags = flags;
      this.#ctx = ctx;
      this.#runAt = -1;
    }
    const at = w.pos;
    const topic = this.#topicBytes;
    const client = this.#clientBytes;
    w.raw(ctx.keyMode === "topic" ? topic : ctx.keyMode === "client-id" ? client : NULL_KEY);
    w.varint(valueLength);
    if (ctx.format === "raw") w.raw(msg.payload);
    else writeJsonValue(w, msg, clientId, ctx);
    w.varint(7);
    const run = w.pos;
    if (this.#runAt >= 0) {
      const n = this.#runEnd - this.#runAt;
      w.buf.copyWithin(run, this.#runAt, this.#runEnd);
      w.pos += n;
    } else {
      w.raw(H_TOPIC);
      w.raw(topic);
      w.raw(QOS_RETAIN[flags]);
      w.raw(client);
      if (this.#nodeBlockFor !== ctx.nodeId) {
        this.#nodeBlock = concat(H_NODE, fields.get(ctx.nodeId), H_TIME);
        this.#nodeBlockFor = ctx.nodeId;
      }
      w.raw(this.#nodeBlock);
    }
    this.#runAt = run;
    this.#runEnd = w.pos;
    if (msg.createdAt !== this.#time) {
      const t = new ByteWriter(16);
      t.varDecimal(msg.createdAt);
      this.#timeText = t.bytes();
      this.#time = msg.createdAt;
    }
    w.raw(this.#timeText);
    w.raw(H_ID);
    // The message just made (a publisher's, bridged at once): its id from its parts.
    if (isMadeId(msg.id)) {
      const id = madeIdBytes();
      w.varint(id.length);
      w.raw(id.prefix);
      w.rawFrom(id.digits, id.from, id.digits.length - id.from);
    } else w.varString(msg.id);
    out.chunk = w.buf;
    out.at = at;
    out.length = w.pos - at;
  }
}

const arena = new Arena();

/**
 * Writes the record tail of `msg` from `clientId` (a message without 5.0 properties) with
 * `valueLength` bytes of value (the payload, or the mqttwk-json text); says where in `out`.
 */
export function writeMessageTail(
  msg: StoredMessage,
  clientId: string,
  ctx: RecordContext,
  valueLength: number,
  out: TailRef,
): void {
  arena.write(msg, clientId, ctx, valueLength, out);
}

const decoder = new TextDecoder();

/**
 * The MQTT topic of a record written here (its first header's value), for the rare log line
 * that names it: kept out of the queued record, which would hold the string for the round trip.
 */
export function mqttTopicOf(r: TailRef): string {
  const b = r.chunk;
  let pos = r.at;
  const varint = (): number => {
    const v = readVarint(b, pos);
    pos = varintEnd;
    return v;
  };
  const skip = () => {
    const n = varint();
    if (n > 0) pos += n;
  };
  skip(); // key
  skip(); // value
  varint(); // header count
  skip(); // "mqtt.topic"
  const n = varint();
  return decoder.decode(b.subarray(pos, pos + n));
}
