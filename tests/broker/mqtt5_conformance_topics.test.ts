/**
 * MQTT 5.0 conformance, topics and shared delivery: normative statements the other 5.0 tests
 * exercised without citing them (see docs/mqtt5.md, the conformance table).
 */
import assert from "node:assert/strict";
import type { PublishPacket } from "../../src/codec/packets.ts";
import { ReasonCode } from "../../src/codec/reason_codes.ts";
import { assertNone, drop, publishAcked, subscribe, text, waitFor, withBroker } from "./harness.ts";
import { connected5 } from "./mqtt5_harness.ts";

Deno.test("a topic starting with U+FEFF is kept as it is, and matched without normalization [MQTT-1.5.4-3] [MQTT-4.7.3-4]", async () => {
  await withBroker(async (b) => {
    const { c: plain } = await connected5(b, "plain");
    const { c: bom } = await connected5(b, "bom");
    const { c: composed } = await connected5(b, "composed");
    await subscribe(plain, [["a/b", 0]]);
    await subscribe(bom, [["\uFEFFa/b", 0]]);
    await subscribe(composed, [["caf\u00e9", 0]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "\uFEFFa/b", "with BOM", 1);
    // "e" + U+0301 is the decomposed form of "é": a different topic, not normalized into it.
    await publishAcked(pub, "cafe\u0301", "decomposed", 1, { packetId: 2 });
    const m = await bom.next("publish");
    assert.equal(m.topic, "\uFEFFa/b", "the BOM is neither skipped nor stripped");
    assert.equal(text(m), "with BOM");
    await assertNone(plain, "publish");
    await assertNone(composed, "publish");
    for (const c of [plain, bom, composed, pub]) c.close();
  });
});

Deno.test("a shared member's PUBACK 0x80 discards the message: no other member gets it, even after the member leaves [MQTT-4.8.2-6]", async () => {
  await withBroker(async (b) => {
    const { c: m1 } = await connected5(b, "m1", { sessionExpiryInterval: 600 });
    const { c: m2 } = await connected5(b, "m2", { sessionExpiryInterval: 600 });
    await subscribe(m1, [["$share/g/t", 1]]);
    await subscribe(m2, [["$share/g/t", 1]]);
    const { c: pub } = await connected5(b, "pub");
    await publishAcked(pub, "t", "refused", 1);
    await waitFor(() => m1.pending("publish").length + m2.pending("publish").length > 0);
    const [chosen, other] = m1.pending("publish").length > 0 ? [m1, m2] : [m2, m1];
    const p = await chosen.next("publish") as PublishPacket;
    await chosen.send({
      type: "puback",
      packetId: p.packetId!,
      reasonCode: ReasonCode.UnspecifiedError,
    });
    // The refusal ended the flow: leaving now must not hand the message to the other member.
    await waitFor(() => b.sessions.get(chosen === m1 ? "m1" : "m2")?.inflight.size === 0);
    await drop(chosen);
    await assertNone(other, "publish");
    other.close();
    pub.close();
  });
});
