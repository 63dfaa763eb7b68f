import assert from "node:assert/strict";
import { Decoder } from "../../src/codec/decoder.ts";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet } from "../../src/codec/packets.ts";
import { withConnectUsername } from "../../src/transport/cert_username.ts";

Deno.test("the certificate CN replaces the CONNECT username however the bytes are chunked", async () => {
  const connect = encode({
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 4,
    clean: true,
    keepalive: 10,
    clientId: "c1",
    username: "claimed",
    password: new TextEncoder().encode("pw"),
  }, 4);
  const ping = encode({ type: "pingreq" }, 4);
  const all = new Uint8Array([...connect, ...ping]);
  const chunks = [...all].map((b) => new Uint8Array([b]));
  const source = new ReadableStream<Uint8Array>({
    pull(c) {
      const n = chunks.shift();
      if (n) c.enqueue(n);
      else c.close();
    },
  });
  const packets: Packet[] = [];
  const d = new Decoder();
  for await (const c of withConnectUsername(source, "alice", 1 << 20)) {
    d.push(c, (p) => packets.push(p));
  }
  assert.equal(packets.length, 2);
  assert.equal(packets[0].type, "connect");
  if (packets[0].type === "connect") {
    assert.equal(packets[0].username, "alice");
    assert.equal(packets[0].clientId, "c1");
    assert.deepEqual([...packets[0].password!], [...new TextEncoder().encode("pw")]);
  }
  assert.equal(packets[1].type, "pingreq");
});
