/**
 * Overview: counters, three live charts fed by /api/v1/stats/stream (one sample a second),
 * and what /api/v1/status says about the broker (version, node, uptime, listeners, store,
 * Kafka bridge). The stream runs for as long as the user is logged in, so the charts have
 * history when the user comes back to this view.
 */
import { streamStats } from "./api.js";
import { LineChart } from "./chart.js";
import { byId, duration, fill, h, num } from "./dom.js";

const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** The overview view; see app.js for the view interface. */
export function overviewView(ctx) {
  const charts = {
    connections: new LineChart(
      byId("chart-connections"),
      [{ key: "connections", label: "connections", color: cssVar("--in") }],
      { readout: byId("readout-connections") },
    ),
    messages: new LineChart(byId("chart-messages"), [
      { key: "messagesInPerSec", label: "in", color: cssVar("--in") },
      { key: "messagesOutPerSec", label: "out", color: cssVar("--out") },
    ], { readout: byId("readout-messages"), unit: "/s" }),
    dropped: new LineChart(
      byId("chart-dropped"),
      [{ key: "droppedPerSec", label: "dropped", color: cssVar("--drop") }],
      { readout: byId("readout-dropped"), unit: "/s" },
    ),
  };
  /** The latest stream sample, merged over status.stats for the counters. */
  let latest = {};
  let abort = null;

  function renderStats() {
    const s = { ...(ctx.status?.stats ?? {}), ...latest };
    const items = [
      ["Connections", s.connections],
      ["Sessions", s.sessions],
      ["Subscriptions", s.subscriptions],
      ["Retained", s.retained],
      ["Messages in", s.messagesIn],
      ["Messages out", s.messagesOut],
      ["Dropped", s.dropped],
      ["In /s", s.messagesInPerSec],
      ["Out /s", s.messagesOutPerSec],
    ];
    fill(
      byId("stats"),
      items.map(([k, v]) =>
        h("div", {}, h("dt", {}, k), h("dd", {}, v === undefined ? "–" : num(v)))
      ),
    );
  }

  function renderInfo() {
    const st = ctx.status;
    if (!st) return fill(byId("broker-info"), "Broker status unavailable.");
    const facts = [
      ["Version", st.version],
      ["Node", st.node],
      ["Uptime", duration(st.uptimeSeconds)],
      [
        "Listeners",
        (st.listeners ?? []).map((l) => `${l.kind} ${l.host}:${l.port}${l.path ?? ""}`).join(
          ", ",
        ) ||
        "–",
      ],
      ["Store", st.store ? `${st.store.kind}, ${st.store.healthy ? "healthy" : "UNHEALTHY"}` : "–"],
      ["Kafka bridge", bridgeText(st.kafka)],
      [
        "Cluster",
        st.cluster?.enabled ? `${st.cluster.nodes?.length ?? 0} nodes` : "single node",
      ],
    ];
    fill(
      byId("broker-info"),
      h("h3", {}, "Broker"),
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")])),
    );
  }

  return {
    start() {
      for (const c of Object.values(charts)) c.clear();
      latest = {};
      abort = new AbortController();
      const state = byId("stream-state");
      streamStats(
        (sample) => {
          latest = sample;
          const t = Number(sample.t) || Date.now();
          for (const c of Object.values(charts)) c.push(t, sample);
          if (!byId("view-overview").hidden) renderStats();
        },
        (s, detail) => {
          state.textContent = detail ? `${s} (${detail})` : s;
          state.dataset.state = s;
        },
        abort.signal,
      );
    },
    stop() {
      abort?.abort();
      abort = null;
    },
    async refresh() {
      await ctx.refreshStatus();
      renderStats();
      renderInfo();
      // Canvas sizes follow the layout, which is only known once the view is shown.
      for (const c of Object.values(charts)) c.draw();
    },
  };
}

/** "off", "connected" or "DOWN" for the Kafka bridge. */
export function bridgeText(k) {
  if (!k) return "–";
  if (!k.enabled) return "off";
  return k.healthy ? "on, healthy" : "on, UNHEALTHY";
}
