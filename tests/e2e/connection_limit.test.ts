/** The connection limit: stated at start-up, enforced with CONNACK 0x03, never a crash. */
import assert from "node:assert/strict";
import { EXTERNAL, scoped, startBroker, uid } from "../helpers/broker.ts";
import * as raw from "../helpers/raw.ts";

Deno.test({
  name: "at max-connections a new client gets CONNACK 0x03 and the broker keeps serving",
  ignore: EXTERNAL, // needs --mqttwk.broker.max-connections
  fn: async () => {
    const broker = await startBroker({ args: ["--mqttwk.broker.max-connections=3"] });
    try {
      await broker.waitForLog(/connection limit 3\b/);
      await scoped(async (defer) => {
        const held: raw.RawClient[] = [];
        for (let i = 0; i < 3; i++) {
          const { client, connack } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("held"),
          });
          defer(client.close);
          assert.equal(connack.returnCode, 0);
          held.push(client);
        }
        const { client: extra, connack } = await raw.rawConnect(broker.host, broker.port, {
          clientId: uid("extra"),
        });
        defer(extra.close);
        assert.equal(connack.returnCode, 3, "server unavailable");
        await extra.expectClosed();
        assert.match(broker.logs(), /connection limit 3 reached/);

        // A freed slot is usable again at once.
        await held[0].close();
        let accepted = false;
        for (let i = 0; i < 50 && !accepted; i++) {
          const { client, connack } = await raw.rawConnect(broker.host, broker.port, {
            clientId: uid("again"),
          });
          defer(client.close);
          accepted = connack.returnCode === 0;
          if (!accepted) await new Promise((r) => setTimeout(r, 20));
        }
        assert.ok(accepted, "a connection is accepted after one closed");
      });
    } finally {
      assert.equal(await broker.stop(), 0, broker.logs());
    }
  },
});
