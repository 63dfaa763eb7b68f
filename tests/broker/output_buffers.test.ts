/**
 * Output buffers are shared between connections (output_buffers.ts): one goes back to the pool
 * only when its transport says a write that returned at once is done with its bytes
 * (RawIo.returnsBytes). A transport that keeps what it was given must never see its bytes change
 * afterwards, and one that returns them must still get every byte right.
 */
import assert from "node:assert/strict";
import type { Broker } from "../../src/broker/broker.ts";
import type { RawIo, RawSink } from "../../src/broker/ports/connection.ts";
import { Decoder } from "../../src/codec/decoder.ts";
import { encode } from "../../src/codec/encoder.ts";
import type { Packet } from "../../src/codec/packets.ts";
import { publish, withBroker } from "./harness.ts";

/** A raw connection that keeps every buffer it was handed, as given (no copy). */
class KeepingConnection {
  /** Each write: the buffer as handed over, and a copy taken at that moment. */
  readonly writes: { given: Uint8Array; then: Uint8Array }[] = [];
  readonly received: Packet[] = [];
  #sink: RawSink | null = null;
  #decoder = new Decoder({ protocolVersion: 4 });
  #waiting: { count: number; done: () => void } | null = null;
  readonly raw: RawIo;
  readonly readable = new ReadableStream<Uint8Array>();
  readonly writable = new WritableStream<Uint8Array>();
  readonly transport = "memory";

  constructor(b: Broker, readonly remoteAddress: string, returnsBytes: boolean) {
    this.raw = {
      start: (sink) => void (this.#sink = sink),
      pause: () => {},
      resume: () => {},
      write: (bytes) => {
        this.writes.push({ given: bytes, then: bytes.slice() });
        this.#decoder.push(bytes.slice(), (p) => this.received.push(p));
        const w = this.#waiting;
        if (w && this.received.length >= w.count) {
          this.#waiting = null;
          w.done();
        }
        return undefined;
      },
      returnsBytes,
    };
    b.handleConnection(this);
  }

  send(p: Packet): void {
    this.#sink!.onData(encode(p, 4));
  }

  close(): void {}

  /** Resolves once `count` packets have arrived (the broker writes synchronously as it goes). */
  arrived(count: number): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiting = { count, done: resolve };
    return promise;
  }

  /** Writes whose buffer no longer holds what was written. */
  changed(): number {
    return this.writes.filter((w) => !w.given.every((b, i) => b === w.then[i])).length;
  }
}

for (const returnsBytes of [false, true]) {
  Deno.test(`output to a transport that ${returnsBytes ? "returns" : "keeps"} its bytes is right, and kept bytes never change`, async () => {
    await withBroker(async (b) => {
      const conns = [0, 1, 2].map((i) => new KeepingConnection(b, `memory:${i}`, returnsBytes));
      conns.forEach((c, i) => {
        c.send({
          type: "connect",
          protocolName: "MQTT",
          protocolVersion: 4,
          clientId: `c${i}`,
          clean: true,
          keepalive: 0,
        });
        c.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "t/#", qos: 0 }] });
      });
      await Promise.all(conns.map((c) => c.arrived(2))); // CONNACK, SUBACK
      // Flushes of many sizes, one round at a time, so that buffers come and go between
      // connections.
      let sent = 0;
      for (let round = 0; round < 40; round++) {
        const n = 1 + (round * 7) % 23;
        for (let k = 0; k < n; k++) {
          const payload = new Uint8Array(10 + (round * 131 + k * 17) % 3000).fill(round + k);
          conns[round % 3].send(publish(`t/${round}/${k}`, payload));
          sent++;
        }
        await Promise.all(conns.map((c) => c.arrived(2 + sent)));
      }
      for (const c of conns) {
        const publishes = c.received.slice(2) as Extract<Packet, { type: "publish" }>[];
        let i = 0;
        for (let round = 0; round < 40; round++) {
          const n = 1 + (round * 7) % 23;
          for (let k = 0; k < n; k++, i++) {
            const p = publishes[i];
            assert.equal(p.topic, `t/${round}/${k}`);
            assert.equal(p.payload.byteLength, 10 + (round * 131 + k * 17) % 3000);
            assert.ok(p.payload.every((x) => x === ((round + k) & 0xff)), `payload of ${p.topic}`);
          }
        }
        if (!returnsBytes) assert.equal(c.changed(), 0, "a buffer the transport kept changed");
      }
      // The pool is in use when the transport returns bytes: some buffer was written into again.
      if (returnsBytes) assert.ok(conns.some((c) => c.changed() > 0), "no buffer was reused");
    });
  });
}
