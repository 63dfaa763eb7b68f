/**
 * A new subscription's retained messages come before any live message it matches, as Mosquitto
 * sends them, also when the SUBACK waits for a store commit and live traffic arrives meanwhile.
 */
import assert from "node:assert/strict";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import { connected, publish, publishAcked, text, waitFor, withBroker } from "./harness.ts";

/** A durable store whose commits can be held open, as a slow disk would. */
class HeldStore extends MemoryStore {
  #held: PromiseWithResolvers<void> | null = null;
  flushes = 0;

  hold(): void {
    this.#held = Promise.withResolvers<void>();
  }

  release(): void {
    this.#held?.resolve();
    this.#held = null;
  }

  override flush(): Promise<void> {
    this.flushes++;
    return this.#held?.promise ?? super.flush();
  }
}

Deno.test("retained messages precede a live message that arrives while the SUBACK waits for its commit", async () => {
  const store = new HeldStore();
  await withBroker(async (b) => {
    const pub = await connected(b, "sys-writer");
    for (let i = 0; i < 20; i++) {
      await publishAcked(pub, `sys/figure/${i}`, `v${i}`, 0, { retain: true });
    }
    await waitFor(() => b.retained.size === 20, 3000, "20 retained messages");
    const sub = await connected(b, "reader", { clean: false });
    store.hold();
    const flushesBefore = store.flushes;
    await sub.send({ type: "subscribe", packetId: 1, subscriptions: [{ topic: "sys/#", qos: 0 }] });
    // The subscription is stored, so its SUBACK waits for the (held) commit.
    await waitFor(() => store.flushes > flushesBefore, 3000, "the SUBSCRIBE's commit to start");
    await pub.send(publish("sys/figure/0", "live", 0, { retain: true }));
    await waitFor(() => b.stats.messagesIn >= 21, 3000, "the live PUBLISH handled");
    assert.equal(sub.pending("suback").length, 0, "the SUBACK is still held");
    store.release();
    await waitFor(() => sub.pending("publish").length === 21, 3000, "20 retained and 1 live");
    const order = sub.received.filter((p) => p.type === "suback" || p.type === "publish")
      .map((p) =>
        p.type === "suback"
          ? "SUBACK"
          : `${text(p as PublishPacket)}${(p as PublishPacket).retain ? "(r)" : ""}`
      );
    assert.equal(order[0], "SUBACK");
    assert.deepEqual(order.slice(-1), ["live"], `the live message comes last: ${order.join(" ")}`);
    assert.ok(order.slice(1, -1).every((m) => m.endsWith("(r)")), order.join(" "));
    pub.close();
    sub.close();
  }, { store, options: { durable: true } });
});
