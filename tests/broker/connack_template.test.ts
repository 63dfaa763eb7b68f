/**
 * The accepting 3.1.1 CONNACK is a shared template handed to the transport as it is: every
 * connection's first write is the same 4 bytes, never a buffer of its own, and output queued
 * behind it (a resumed session's messages) goes to a new buffer, so the template is never
 * written to.
 */
import assert from "node:assert/strict";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet } from "../../src/codec/packets.ts";
import type { Broker } from "../../src/broker/broker.ts";
import type { ByteConnection } from "../../src/broker/ports/connection.ts";
import { connected, disconnect, publishAcked, waitFor, withBroker } from "./harness.ts";

/** A connection whose broker-side writes are kept as the objects the broker wrote. */
function rawConnection(b: Broker, clientId: string, clean: boolean): Uint8Array[] {
  const writes: Uint8Array[] = [];
  const up = new TransformStream<Uint8Array, Uint8Array>();
  const conn: ByteConnection = {
    readable: up.readable,
    writable: new WritableStream({ write: (chunk) => void writes.push(chunk) }),
    remoteAddress: "memory:1",
    transport: "memory",
    close: () => {},
  };
  b.handleConnection(conn);
  const w = up.writable.getWriter();
  const connect = {
    type: "connect",
    protocolName: "MQTT",
    protocolVersion: 4,
    clean,
    keepalive: 0,
  };
  w.write(encode({ ...connect, clientId } as Packet, 4));
  return writes;
}

Deno.test("every accepted 3.1.1 connection gets the same CONNACK object, unchanged", async () => {
  await withBroker(async (b) => {
    const a = rawConnection(b, "t-a", true);
    const c = rawConnection(b, "t-c", true);
    await waitFor(() => a.length > 0 && c.length > 0);
    assert.strictEqual(a[0], c[0], "one shared buffer, no buffer per connect");
    assert.deepEqual([...a[0]], [0x20, 2, 0, 0]);

    // A persistent session resumed with a queued message: CONNACK (present), then the PUBLISH.
    const p = await connected(b, "t-p", { clean: false });
    await p.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "t/x", qos: 1 }] });
    await p.next("suback");
    await disconnect(p);
    const pub = await connected(b, "t-pub");
    await publishAcked(pub, "t/x", "queued", 1);
    const r = rawConnection(b, "t-p", false);
    await waitFor(() => r.reduce((n, w) => n + w.byteLength, 0) > 4);
    assert.deepEqual([...r[0].subarray(0, 4)], [0x20, 2, 1, 0]);

    const d = rawConnection(b, "t-d", true);
    await waitFor(() => d.length > 0);
    assert.strictEqual(d[0], a[0]);
    assert.deepEqual([...d[0]], [0x20, 2, 0, 0], "the template was never written to");
  });
});
