/**
 * `$SYS` is read-only for clients, with no ACL configured: mosquitto_pub's publishes there are
 * acknowledged and dropped (as Mosquitto does), while an mqtt.js subscriber to `$SYS/#` keeps
 * its subscription.
 */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { hostArgs, ignoreWithoutCli, mosquittoPub } from "../helpers/cli.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";

Deno.test({
  name: "mosquitto_pub cannot publish to $SYS, and an mqtt.js subscriber to $SYS/# sees nothing",
  ignore: EXTERNAL || ignoreWithoutCli(),
  fn: async () => {
    // The broker's own $SYS figures off: this test is about what clients may publish there.
    const broker = await startBroker({ args: ["--mqttwk.broker.sys-interval=0"] });
    try {
      await scoped(async (defer) => {
        const sub = await connectMqttJs(broker.url, { clientId: uid("sys-sub") });
        defer(sub.close);
        const marker = uid("after-sys");
        assert.deepEqual(await sub.subscribe(["$SYS/#", marker], 1), [1, 1], "$SYS/# is granted");
        const pub = (topic: string, qos: string) =>
          mosquittoPub([
            ...hostArgs(broker.host, broker.port),
            ...["-i", uid("sys-pub"), "-t", topic, "-m", "forged", "-q", qos],
          ]);
        // mosquitto_pub exits 0 once its PUBLISH is acknowledged (QoS 1/2): that is the answer
        // MQTT 3.1.1 gives an unauthorized PUBLISH.
        await pub("$SYS/broker/clients/connected", "1");
        await pub("$SYS/broker/version", "2");
        await pub("$SYS/x", "0");
        // Each publish above was acknowledged before this one started, so anything routed from
        // them reached the subscriber first.
        await pub(marker, "1");
        await sub.inbox.waitFor((m) => m.topic === marker);
        const got = sub.inbox.messages.map((m) => m.topic);
        const refusals = broker.logs().split("\n").filter((l) => l.includes("reserved for"));
        console.log(
          `3 mosquitto_pub runs to $SYS, then 1 to ${marker}: subscriber got [${
            got.join(", ")
          }]; ` +
            `log: ${refusals.length} refusal line(s)`,
        );
        assert.deepEqual(got, [marker]);
        assert.equal(refusals.length, 3, "one line per client (each run is a new client)");
        assert.match(refusals[0], /not authorized to publish to \$SYS\/broker\/clients\/connected/);
      });
    } finally {
      await broker.stop();
    }
  },
});
