/**
 * Issue 16, finding 7: the per-address session limit counts an address's persistent sessions
 * over every listener together, so opening a second transport does not double the allowance.
 */
import assert from "node:assert/strict";
import { EXTERNAL, startBroker, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { freePort, listenerPort } from "../transport/helpers.ts";

Deno.test({
  name: "the per-address session limit counts TCP and WebSocket sessions of one address together",
  ignore: EXTERNAL, // needs broker flags
  async fn() {
    const wsPort = await freePort();
    const broker = await startBroker({
      args: [
        "--mqttwk.broker.max-sessions-per-address=2",
        "--mqttwk.broker.websocket-enabled=true",
        `--mqttwk.broker.websocket-port=${wsPort}`,
      ],
    });
    const open: { close(): Promise<void> }[] = [];
    try {
      await listenerPort(broker, "ws");
      const ws = `ws://127.0.0.1:${wsPort}/mqtt`;
      open.push(await connectMqttJs(broker.url, { clientId: uid("tcp-a"), clean: false }));
      open.push(await connectMqttJs(ws, { clientId: uid("ws-a"), clean: false }));

      const refused = (url: string) =>
        connectMqttJs(url, { clientId: uid("third"), clean: false }).then(
          (c) => {
            open.push(c);
            return "accepted";
          },
          (err: Error) => err.message,
        );
      assert.match(await refused(ws), /Server unavailable/, "a third session over WebSocket");
      assert.match(await refused(broker.url), /Server unavailable/, "a third session over TCP");
      await broker.waitForLog(/per-address session limit 2 reached for 127\.0\.0\.1/);

      // A clean session is bounded by the connection limits, not by this one.
      open.push(await connectMqttJs(ws, { clientId: uid("ws-clean"), clean: true }));
    } finally {
      for (const c of open) await c.close();
      await broker.stop();
    }
  },
});
