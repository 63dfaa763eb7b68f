/**
 * Operating a two-node cluster (two in-process apps on one real redis-server) from the dashboard
 * of one node, in real Chromium: both nodes are listed healthy, a client connected to the other
 * node is found and kicked, and a node that goes away stops being shown as healthy.
 */
import assert from "node:assert/strict";
import { scoped, uid } from "../helpers/broker.ts";
import { browserPage, ignoreWithoutChromium, until } from "../helpers/chromium.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { REDIS_IGNORE, startRedis, testPrefix } from "../helpers/redis.ts";
import { startHttpApp } from "../http/helpers.ts";

/** One node; its HTTP API is open (loopback, no users or keys), so the page needs no login. */
function clusterNode(redisPort: number, prefix: string, id: string) {
  return startHttpApp([
    "--mqttwk.http.api-keys-file=/nonexistent/api-keys",
    "--mqttwk.broker.cluster-on=true",
    "--redis.host=127.0.0.1",
    `--redis.port=${redisPort}`,
    `--redis.key-prefix=${prefix}`,
    `--node-id=${id}`,
    "--mqttwk.broker.cluster.node-timeout=2",
  ]);
}

/** True in the page when node `id` has a row in the cluster view that says "healthy". */
const nodeHealthy = (id: string) =>
  `[...document.querySelectorAll("#cluster-info tbody tr")].some((r) => ` +
  `r.cells[0]?.textContent.startsWith(${JSON.stringify(id)}) && ` +
  `r.cells[1]?.textContent === "healthy")`;

Deno.test({
  name: "the dashboard of one cluster node shows both nodes and kicks a client of the other",
  ignore: REDIS_IGNORE || ignoreWithoutChromium("dashboard cluster browser"),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const redis = await startRedis();
    await scoped(async (defer) => {
      defer(() => redis.stop());
      const prefix = testPrefix("dash");
      const a = await clusterNode(redis.port, prefix, "node-a");
      defer(() => a.app.stop());
      const b = await clusterNode(redis.port, prefix, "node-b");
      let bRunning = true;
      defer(() => bRunning && b.app.stop());
      const { page, errors } = await browserPage(defer);

      await page.goto(`${a.base}/#cluster`);
      await until(page, nodeHealthy("node-a"));
      await until(page, nodeHealthy("node-b"));
      assert.match(await page.locator("#cluster-info").textContent() ?? "", /Cluster mode/);

      const idB = uid("on-b");
      const onB = await connectMqttJs(b.url, { clientId: idB });
      defer(() => onB.close());
      const kicked = new Promise<void>((res) => onB.client.once("close", () => res()));
      await page.getByRole("button", { name: "Clients", exact: true }).click();
      await page.getByLabel("Client id prefix", { exact: true }).fill(idB);
      await page.getByRole("button", { name: "Search" }).click();
      const row = page.locator("#clients-table tbody tr", { hasText: idB });
      await row.getByText("node-b", { exact: true }).waitFor({ timeout: 15_000 });
      await page.getByRole("button", { name: `Disconnect ${idB}` }).click();
      await kicked;
      // (The row, not the "no client id starts with …" line that then names the id.)
      await page.getByRole("button", { name: idB, exact: true }).waitFor({
        state: "detached",
        timeout: 15_000,
      });

      // Node B stops: the view served by A no longer shows it healthy.
      await b.app.stop();
      bRunning = false;
      await page.getByRole("button", { name: "Cluster", exact: true }).click();
      await until(page, `!(${nodeHealthy("node-b")})`, 20_000);
      await until(page, nodeHealthy("node-a"));
      assert.deepEqual(errors, []);
    });
  },
});
