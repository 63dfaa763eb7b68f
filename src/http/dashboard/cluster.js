/**
 * Cluster nodes with their health, the store and the Kafka bridge, all from /api/v1/status.
 */
import { byId, duration, fill, h, num, table } from "./dom.js";
import { bridgeText } from "./overview.js";

/** The cluster view; see app.js for the view interface. */
export function clusterView(ctx) {
  const holder = byId("cluster-info");
  return {
    async refresh() {
      const st = await ctx.refreshStatus();
      const nodes = Array.isArray(st?.cluster?.nodes) ? st.cluster.nodes : [];
      const health = (ok) => h("span", { class: ok ? "ok" : "bad" }, ok ? "healthy" : "UNHEALTHY");
      fill(
        holder,
        h("p", {}, st?.cluster?.enabled ? "Cluster mode." : "Single node (cluster mode off)."),
        table(
          "Nodes",
          ["Node", "Health", "Connections", "Uptime"],
          nodes.map((n) => [
            h("code", {}, n.id, n.id === st.node ? " (serving this page)" : ""),
            health(n.healthy),
            num(n.connections),
            duration(n.uptimeSeconds),
          ]),
          "No nodes reported.",
        ),
        h(
          "dl",
          { class: "facts card" },
          h("dt", {}, "Store"),
          h("dd", {}, st?.store?.kind ?? "–", " ", st?.store ? health(st.store.healthy) : ""),
          h("dt", {}, "Kafka bridge"),
          h("dd", { id: "kafka-state" }, bridgeText(st?.kafka)),
        ),
      );
    },
    stop() {
      holder.replaceChildren();
    },
  };
}
