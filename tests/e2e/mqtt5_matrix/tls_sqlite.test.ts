/**
 * The MQTT 5.0 matrix (cases.ts) over TLS with the durable SQLite store. While a persistent
 * session is offline the broker is killed with SIGKILL and started again on the same data
 * directory, so queued messages, their properties and their expiry come back from the store.
 */
import { EXTERNAL } from "../../helpers/broker.ts";
import { DurableBroker } from "../../helpers/durability_broker.ts";
import { freePort, makeCerts, tlsBrokerArgs } from "../../transport/helpers.ts";
import { commonArgs } from "./deployment.ts";
import { runMatrix } from "./cases.ts";

runMatrix("TLS with the SQLite store, restarted while sessions are offline", EXTERNAL, async () => {
  const certs = await makeCerts();
  // A fixed TLS port: clients come back to the same one after the restart.
  const tlsPort = freePort();
  const broker = await DurableBroker.start({
    args: tlsBrokerArgs(certs, [
      `--mqttwk.broker.ssl-port=${tlsPort}`,
      "--mqttwk.broker.wss-enabled=false",
      "--log-level=info",
      ...await commonArgs(certs.dir),
    ]),
  });
  const ca = await Deno.readTextFile(certs.ca);
  return {
    deployment: {
      name: "tls+sqlite",
      transport: "tls",
      cluster: false,
      url: () => `mqtts://localhost:${tlsPort}`,
      address: () => ({ host: "127.0.0.1", port: tlsPort }),
      caFile: certs.ca,
      logs: () => broker.logs(),
      clientOptions: { ca, rejectUnauthorized: true },
      offline: async () => {
        await broker.kill();
        await broker.restart();
      },
    },
    close: async () => {
      await broker.dispose();
      await Deno.remove(certs.dir, { recursive: true });
    },
  };
});
