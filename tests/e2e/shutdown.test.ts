/** Graceful shutdown on SIGTERM. */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import * as raw from "../helpers/raw.ts";

Deno.test({
  name: "SIGTERM shuts the broker down gracefully: exit code 0, clients disconnected",
  ignore: EXTERNAL, // needs its own broker process
  fn: () =>
    scoped(async (defer) => {
      const broker = await startBroker();
      defer(broker.kill); // only matters if the test fails before stop()
      const a = await raw.rawConnect(broker.host, broker.port, { clientId: uid("sd-a") });
      defer(a.client.close);
      const b = await raw.rawConnect(broker.host, broker.port, {
        clientId: uid("sd-b"),
        cleanSession: false,
      });
      defer(b.client.close);
      await raw.rawSubscribe(b.client, 1, [[`${uid("sd")}/t`, 1]]);
      const js = await connectMqttJs(broker.url);
      defer(js.close);
      const jsClosed = new Promise<void>((r) => js.client.once("close", () => r()));

      const t0 = performance.now();
      const code = await broker.stop();
      const elapsed = performance.now() - t0;
      assert.equal(code, 0, `exit code ${code}; logs:\n${broker.logs()}`);
      assert.ok(elapsed < 10_000, `shutdown took ${elapsed.toFixed(0)} ms`);
      await a.client.expectClosed(2_000);
      await b.client.expectClosed(2_000);
      await jsClosed;
      // And the port is no longer served.
      await assert.rejects(() => raw.RawClient.open(broker.host, broker.port));
    }),
});

Deno.test({
  name: "SIGTERM on an idle broker exits 0 promptly",
  ignore: EXTERNAL,
  fn: async () => {
    const broker = await startBroker();
    const t0 = performance.now();
    assert.equal(await broker.stop(), 0, broker.logs());
    assert.ok(performance.now() - t0 < 5_000);
  },
});
