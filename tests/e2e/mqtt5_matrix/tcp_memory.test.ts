/**
 * The MQTT 5.0 matrix (cases.ts) on one broker over plain TCP with the memory store: the baseline
 * the durable and clustered deployments are compared with. "offline" is a plain wait here.
 */
import { EXTERNAL, startBroker } from "../../helpers/broker.ts";
import { commonArgs } from "./deployment.ts";
import { runMatrix } from "./cases.ts";

runMatrix("TCP with the memory store", EXTERNAL, async () => {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-m5matrix-" });
  const broker = await startBroker({ args: await commonArgs(dir) });
  return {
    deployment: {
      name: "tcp+memory",
      transport: "tcp",
      cluster: false,
      url: () => broker.url,
      address: () => ({ host: broker.host, port: broker.port }),
      logs: () => broker.logs(),
      clientOptions: {},
      offline: () => Promise.resolve(),
    },
    close: async () => {
      await broker.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
});
