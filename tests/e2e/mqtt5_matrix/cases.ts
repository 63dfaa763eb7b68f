/**
 * The MQTT 5.0 feature cases every deployment runs (issue 13: every feature end to end over TCP,
 * TLS and WebSocket, with the SQLite and Redis stores and across cluster nodes). Each case takes a
 * Deployment (deployment.ts) and uses its own topics and client ids, so cases share one broker.
 * On the cluster deployment publishers sit on node 0 and subscribers on node 1 wherever the case
 * allows, and a resumed session comes back on the other node.
 *
 * The matrix files (tcp_memory, tls_sqlite, ws_redis, cluster) run `runMatrix` with their
 * deployment; docs/mqtt5.md lists which deployment covers what.
 */
import type { Deployment } from "./deployment.ts";
import type { Case } from "./case_kit.ts";
import {
  maximumPacketSize,
  receiveMaximum,
  sessions,
  willAcrossOffline,
  wills,
} from "./cases_sessions.ts";
import {
  publishProperties,
  reasonCodes,
  sharedSubscriptions,
  subscribeOptions,
  topicAliases,
  userPropertyOrder,
} from "./cases_messages.ts";

/** Every case, in the order the matrix runs them. */
export const cases: Case[] = [
  sessions,
  receiveMaximum,
  maximumPacketSize,
  topicAliases,
  publishProperties,
  userPropertyOrder,
  subscribeOptions,
  sharedSubscriptions,
  wills,
  willAcrossOffline,
  reasonCodes,
];

/**
 * Registers one Deno test for a deployment, with a step per case: the deployment starts once,
 * every case runs even when an earlier one failed, and it is torn down at the end.
 */
export function runMatrix(
  name: string,
  ignore: boolean,
  setup: () => Promise<{ deployment: Deployment; close(): Promise<void> }>,
): void {
  Deno.test({
    name: `MQTT 5.0 matrix on ${name}`,
    ignore,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      const { deployment, close } = await setup();
      try {
        for (const c of cases) {
          await t.step({ name: c.name, ignore: c.ignore ?? false, fn: () => c.run(deployment) });
        }
      } finally {
        await close();
      }
    },
  });
}
