/**
 * The outbox's batches leave as XADD and PUBLISH commands written around them in the outbox's own
 * buffer (redis/framed_command.ts). The bytes must be exactly what ioredis would have sent, and
 * Redis must store and relay the batch unchanged, also when the command's head does not fit the
 * room (ioredis then builds it).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { Command, Redis } from "ioredis";
import { commandHead, frameLastArgument } from "../../src/redis/framed_command.ts";
import { RedisKeys } from "../../src/redis/keys.ts";
import { FRAMING_ROOM, Outbox } from "../../src/cluster/outbox.ts";
import { FIELD, redisOutboxTransport } from "../../src/cluster/outbox_transport.ts";
import { decodeWire, encodeWire, type WireMessage } from "../../src/cluster/wire.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import { HAVE_REDIS, REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";

const redis = HAVE_REDIS ? await startRedis() : null;
const opts = { ignore: REDIS_IGNORE, sanitizeOps: false, sanitizeResources: false };

/** What ioredis itself writes for `name` with `args`. */
function ioredisBytes(name: string, args: (string | number | Buffer)[]): Buffer {
  const w = new Command(name, args).toWritable(undefined as never);
  return typeof w === "string" ? Buffer.from(w) : w;
}

Deno.test("a framed XADD and PUBLISH are byte for byte what ioredis would send", () => {
  for (const size of [0, 1, 9, 10, 99, 100, 15_000, 65_536]) {
    const body = Buffer.alloc(size, 0xab);
    for (
      const [name, args] of [
        ["xadd", ["mqttwk:stream:{n1}", "MAXLEN", "~", 100000, "*", "m"]],
        ["publish", ["mqttwk:ch:node:n1:m"]],
      ] as [string, (string | number)[]][]
    ) {
      const buf = new Uint8Array(FRAMING_ROOM + size + 2).fill(0x55);
      buf.set(body, FRAMING_ROOM);
      const framed = frameLastArgument(
        commandHead(name, args),
        buf,
        FRAMING_ROOM,
        FRAMING_ROOM + size,
        FRAMING_ROOM,
      );
      assert.ok(framed, `${name} of ${size} bytes fits the room`);
      assert.deepEqual(Buffer.from(framed), ioredisBytes(name, [...args, body]), `${name} ${size}`);
    }
  }
});

Deno.test("a command head larger than the room is not framed and nothing is written", () => {
  const head = commandHead("xadd", ["k".repeat(300), "*", "m"]);
  const buf = new Uint8Array(FRAMING_ROOM + 10 + 2).fill(7);
  assert.equal(frameLastArgument(head, buf, FRAMING_ROOM, FRAMING_ROOM + 10, FRAMING_ROOM), null);
  assert.ok(buf.every((b) => b === 7));
});

function message(id: string, qos: 0 | 1): StoredMessage {
  return {
    id,
    topic: "t/" + id,
    payload: new TextEncoder().encode("payload " + id),
    qos,
    retain: false,
    createdAt: 1,
  };
}

function ids(frame: Uint8Array): string[] {
  const m = decodeWire(frame);
  const list = m.kind === "batch" ? m.messages : [m];
  return list.map((x) => (x as Extract<WireMessage, { kind: "publish" }>).msg.id);
}

for (const node of ["n1", "node-" + "x".repeat(300)]) {
  const what = node.length > 100 ? "a node id too long for the room" : "a short node id";
  Deno.test(
    `outbox batches reach a real Redis intact over XADD and PUBLISH (${what})`,
    opts,
    async () => {
      const keys = new RedisKeys(testPrefix("frame"));
      const out = new Redis({ port: redis!.port, lazyConnect: true });
      const sub = new Redis({ port: redis!.port, lazyConnect: true });
      try {
        await Promise.all([out.connect(), sub.connect()]);
        // Which commands went framed (FramedCommand) and which ioredis built (Command).
        const kinds: string[] = [];
        const send = out.sendCommand.bind(out);
        out.sendCommand = (c, ...rest) => {
          kinds.push(`${c.name} ${c.constructor.name}`);
          return send(c, ...rest);
        };
        const heard: Buffer[] = [];
        const got = Promise.withResolvers<void>();
        sub.on("messageBuffer", (_ch: Buffer, m: Buffer) => {
          heard.push(m);
          if (heard.length === 2) got.resolve();
        });
        await sub.subscribe(keys.channel(`node:${node}:m`));
        const outbox = new Outbox(redisOutboxTransport(out, keys, 1000));
        // One turn: three QoS 1 messages (one entry), two QoS 0 (one channel message); then a lone
        // frame each, sent as itself, with a large payload.
        const first = Promise.all(
          ["a", "b", "c"].map((id) => outbox.toStream(node, encode(id, 1))),
        );
        outbox.toChannel(node, encode("d", 0));
        outbox.toChannel(node, encode("e", 0));
        outbox.flush();
        await first;
        const big = message("f", 1);
        big.payload = new Uint8Array(40_000).fill(3);
        await outbox.streamMessage(node, big);
        outbox.channelMessage(node, message("g", 0));
        outbox.flush();
        await got.promise;
        const entries = await out.xrangeBuffer(keys.stream(node), "-", "+");
        assert.equal(entries.length, 2);
        for (const [, fields] of entries) assert.equal(fields[0].toString(), FIELD);
        assert.deepEqual(ids(entries[0][1][1]), ["a", "b", "c"]);
        const f = decodeWire(entries[1][1][1]);
        assert.ok(f.kind === "publish");
        assert.deepEqual(f.msg.payload, big.payload);
        assert.deepEqual(heard.map(ids), [["d", "e"], ["g"]]);
        const how = node.length > 100 ? "Command" : "FramedCommand";
        assert.deepEqual(kinds.filter((k) => !k.startsWith("subscribe")), [
          `xadd ${how}`,
          `publish ${how}`,
          `xadd ${how}`,
          `publish ${how}`,
          "xrange Command",
        ]);
      } finally {
        out.disconnect();
        sub.disconnect();
      }
    },
  );
}

function encode(id: string, qos: 0 | 1): Uint8Array {
  return encodeWire({ kind: "publish", msg: message(id, qos) });
}
