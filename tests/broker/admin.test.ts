/**
 * The core's admin surface (src/broker/admin.ts): a publish made through it takes the path of a
 * client's PUBLISH, so the sinks (the Kafka bridge) see it and hold its answer, and the ACL and
 * the $SYS rule apply to it.
 */
import assert from "node:assert/strict";
import { AdminRefusal, HTTP_ORIGIN } from "../../src/broker/admin.ts";
import type { ClientInfo, StoredMessage } from "../../src/broker/model.ts";
import type { Authorizer } from "../../src/broker/ports/auth.ts";
import type { MessageSink } from "../../src/broker/ports/sink.ts";
import { connected, subscribe, text, waitFor, withBroker } from "./harness.ts";

/** A sink that holds its answer until the test releases it, as an at-least-once bridge does. */
class HeldSink implements MessageSink {
  readonly seen: { message: StoredMessage; from: ClientInfo }[] = [];
  release = () => {};
  accept(message: StoredMessage, from: ClientInfo): Promise<void> {
    this.seen.push({ message, from });
    return new Promise((resolve) => this.release = resolve);
  }
}

const by = { username: "ops", remoteAddress: "127.0.0.1:5000" };

Deno.test("an admin publish is seen by the sinks and resolves only after their hand-off", async () => {
  const sink = new HeldSink();
  await withBroker(async (b) => {
    const sub = await connected(b, "sub");
    await subscribe(sub, [["k/#", 1]]);
    let done = false;
    const p = b.admin.publish({
      topic: "k/1",
      payload: new TextEncoder().encode("to kafka"),
      qos: 1,
      retain: false,
      by,
    }).then(() => done = true);
    await waitFor(() => sink.seen.length === 1);
    assert.equal(sink.seen[0].from.clientId, HTTP_ORIGIN);
    assert.equal(sink.seen[0].from.username, "ops");
    assert.equal(text(sink.seen[0].message), "to kafka");
    const m = await sub.next("publish");
    assert.equal(m.topic, "k/1");
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(done, false);
    sink.release();
    await p;
    sub.close();
  }, { sinks: [sink] });
});

Deno.test("an admin publish is refused where the ACL or the $SYS rule refuses a client's", async () => {
  const authorizer: Authorizer = {
    canPublish: (info, topic) => !(info.username === "ops" && topic.startsWith("secret/")),
    canSubscribe: () => true,
  };
  await withBroker(async (b) => {
    const pub = (topic: string) =>
      b.admin.publish({ topic, payload: new Uint8Array([1]), qos: 0, retain: false, by });
    await assert.rejects(pub("secret/x"), (e) => e instanceof AdminRefusal && e.status === 403);
    await assert.rejects(
      pub("$SYS/broker/x"),
      (e) => e instanceof AdminRefusal && e.status === 403,
    );
    await assert.rejects(pub("a/+/b"), (e) => e instanceof AdminRefusal && e.status === 400);
    await pub("open/x");
  }, { authorizer });
});
