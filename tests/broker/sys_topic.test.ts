/**
 * `$SYS` belongs to the broker: a client's PUBLISH there is refused whatever the authorizer
 * says (acknowledged and dropped, as MQTT 3.1.1 asks for an unauthorized PUBLISH), while
 * clients may still subscribe to it and the broker's own messages there still reach them.
 */
import assert from "node:assert/strict";
import { Broker } from "../../src/broker/broker.ts";
import type { StoredMessage } from "../../src/broker/model.ts";
import { defaultBrokerOptions } from "../../src/broker/options.ts";
import type { Authorizer } from "../../src/broker/ports/auth.ts";
import { MemoryStore } from "../../src/store/memory.ts";
import type { Logger } from "../../src/log.ts";
import { silentLogger } from "../../src/log.ts";
import { isSysTopic } from "../../src/broker/sys_topic.ts";
import { connected, publishAcked, subscribe, text, waitFor } from "./harness.ts";

const enc = new TextEncoder();

function memoryLog(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (m: string) => void lines.push(m);
  return { ...silentLogger, level: "debug", lines, info: keep, warn: keep, error: keep };
}

/** A started broker that logs into `log` (the harness's brokers log nowhere). */
async function withLoggingBroker(
  log: Logger,
  authorizer: Authorizer,
  fn: (b: Broker) => Promise<void>,
): Promise<void> {
  const b = new Broker({
    store: new MemoryStore(),
    log,
    authorizer,
    options: defaultBrokerOptions,
  });
  await b.start();
  try {
    await fn(b);
  } finally {
    await b.close();
  }
}

Deno.test("a client's PUBLISH to $SYS is acknowledged and dropped even when the authorizer allows it", async () => {
  const log = memoryLog();
  let asked = 0;
  const authorizer = { canPublish: () => (asked++, true), canSubscribe: () => true };
  await withLoggingBroker(log, authorizer, async (b) => {
    const sub = await connected(b, "sys-sub");
    assert.deepEqual(await subscribe(sub, [["$SYS/#", 1], ["$SYS", 1], ["$SYSTEM/#", 1]]), [
      1,
      1,
      1,
    ]);
    const pub = await connected(b, "sys-pub");
    for (const [topic, qos] of [["$SYS/broker/uptime", 0], ["$SYS", 1], ["$SYS/x/y", 2]] as const) {
      await publishAcked(pub, topic, "forged", qos);
    }
    for (let i = 0; i < 50; i++) await publishAcked(pub, "$SYS/flood", String(i), 1);
    // Not $SYS, only a look-alike: an ordinary topic, delivered.
    await publishAcked(pub, "$SYSTEM/ok", "fine", 1);
    const got = await sub.next("publish");
    const refusals = log.lines.filter((l) => l.includes("not authorized to publish"));
    console.log(
      `53 client PUBLISHes to $SYS: ${sub.pending("publish").length} extra deliveries, ` +
        `first delivery on ${got.topic}; authorizer asked ${asked} times; ${refusals.length} ` +
        `log line(s): ${refusals.join(" | ")}`,
    );
    assert.equal(got.topic, "$SYSTEM/ok", "nothing published to $SYS came through");
    assert.equal(text(got), "fine");
    assert.deepEqual(sub.pending("publish"), []);
    assert.equal(refusals.length, 1, "one log line for the client's burst");
    assert.match(refusals[0], /client sys-pub not authorized to publish to \$SYS\/broker\/uptime/);
    assert.equal(asked, 1, "the authorizer is not even asked about $SYS");

    // The broker's own messages (statistics, later) are not a client's PUBLISH.
    const own: StoredMessage = {
      id: "sys-1",
      topic: "$SYS/broker/clients/connected",
      payload: enc.encode("2"),
      qos: 0,
      retain: false,
      createdAt: Date.now(),
    };
    await b.publish(own);
    const sys = await sub.next("publish");
    assert.equal(sys.topic, "$SYS/broker/clients/connected");
    assert.equal(text(sys), "2");
    sub.close();
    pub.close();
  });
});

Deno.test("only $SYS itself and the topics under $SYS/ are the broker's", () => {
  for (const t of ["$SYS", "$SYS/", "$SYS/broker/load", "$SYS//x"]) assert.ok(isSysTopic(t), t);
  for (const t of ["$SYSTEM", "$SYSx/a", "$sys/a", "a/$SYS/b", "SYS/a", "$SY", ""]) {
    assert.ok(!isSysTopic(t), t);
  }
});

Deno.test("a will on $SYS is not published when its client drops, whatever the authorizer says", async () => {
  const log = memoryLog();
  await withLoggingBroker(log, { canPublish: () => true, canSubscribe: () => true }, async (b) => {
    const watcher = await connected(b, "watcher");
    await subscribe(watcher, [["#", 0], ["$SYS/#", 0]]);
    const dying = await connected(b, "dying", {
      extra: {
        will: { topic: "$SYS/broker/version", payload: enc.encode("forged"), qos: 0, retain: true },
      },
    });
    dying.close(); // no DISCONNECT: the will is due
    await waitFor(() => log.lines.some((l) => l.includes("will of dying")), 3000, "will dropped");
    // The broker's own path still reaches $SYS subscribers: the marker comes through, the will not.
    const marker: StoredMessage = {
      id: "m1",
      topic: "$SYS/marker",
      payload: enc.encode("marker"),
      qos: 0,
      retain: false,
      createdAt: Date.now(),
    };
    await b.publish(marker);
    const got = await watcher.next("publish");
    assert.equal(text(got), "marker");
    assert.equal(b.retained.get("$SYS/broker/version") ?? null, null);
    watcher.close();
  });
});
