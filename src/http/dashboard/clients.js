/**
 * Connected clients: search by client id prefix, a table refreshed while shown (re-rendered only
 * when the answer changed, so a button is not replaced under the pointer), one client's details
 * with its subscriptions, and a Disconnect button for admins (DELETE /api/v1/clients/{id}).
 */
import { call, get, seg } from "./api.js";
import { byId, fill, h, pager, table, when } from "./dom.js";

const PAGE = 50;

/** The clients view; see app.js for the view interface. */
export function clientsView(ctx) {
  const form = byId("clients-form");
  const holder = byId("clients-table");
  const details = byId("client-details");
  let shown = "";
  let selected = null;
  let offset = 0;

  async function disconnect(id) {
    try {
      await call("DELETE", `/api/v1/clients/${seg(id)}`);
      ctx.notify(`Disconnected ${id}.`);
      if (selected === id) closeDetails();
      await refresh();
    } catch (e) {
      ctx.fail(`cannot disconnect ${id}`, e);
    }
  }

  function closeDetails() {
    selected = null;
    details.hidden = true;
    details.replaceChildren();
  }

  async function showDetails(id) {
    selected = id;
    try {
      const c = await get(`/api/v1/clients/${seg(id)}`);
      const subs = Array.isArray(c.subscriptions) ? c.subscriptions : [];
      fill(
        details,
        h(
          "div",
          { class: "row" },
          h("h3", {}, `Client ${c.clientId}`),
          h("button", {
            type: "button",
            class: "link",
            onclick: closeDetails,
          }, "Close details"),
        ),
        h(
          "dl",
          { class: "facts" },
          [
            ["User", c.username || "–"],
            ["Address", c.address],
            ["Listener", c.listener],
            ["Protocol", c.protocolVersion],
            ["Node", c.node],
            ["Keepalive", `${c.keepalive} s`],
            ["Connected at", when(c.connectedAt)],
            ["In flight", c.inflight],
            ["Queued", c.queued],
          ].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "–")]),
        ),
        table(
          `Subscriptions of ${c.clientId}`,
          ["Filter", "QoS", "No local", "Retain as published", "Retain handling", "Id"],
          subs.map((s) => [
            h("code", {}, s.filter),
            s.qos,
            s.noLocal ? "yes" : "no",
            s.retainAsPublished ? "yes" : "no",
            s.retainHandling ?? "–",
            s.identifier ?? "–",
          ]),
          "No subscriptions.",
        ),
      );
      details.hidden = false;
    } catch (e) {
      ctx.fail(`cannot show ${id}`, e);
    }
  }

  async function refresh() {
    const prefix = new FormData(form).get("prefix") ?? "";
    const q = new URLSearchParams({ prefix, limit: String(PAGE), offset: String(offset) });
    const data = await get(`/api/v1/clients?${q}`);
    const key = JSON.stringify([data, ctx.isAdmin()]);
    if (key === shown) return;
    shown = key;
    const items = Array.isArray(data?.items) ? data.items : [];
    const admin = ctx.isAdmin();
    const headers = [
      "Client id",
      "User",
      "Address",
      "Listener",
      "Protocol",
      "Node",
      "Subscriptions",
      "In flight",
      "Queued",
      "Connected at",
    ];
    if (admin) headers.push("Actions");
    const rows = items.map((c) => {
      const cells = [
        h("button", {
          type: "button",
          class: "link mono",
          title: "Show details",
          onclick: () => showDetails(c.clientId),
        }, c.clientId),
        c.username || "–",
        c.address,
        c.listener,
        c.protocolVersion,
        c.node,
        c.subscriptions,
        c.inflight,
        c.queued,
        when(c.connectedAt),
      ];
      if (admin) {
        cells.push(h("button", {
          type: "button",
          class: "danger",
          "aria-label": `Disconnect ${c.clientId}`,
          onclick: () => disconnect(c.clientId),
        }, "Disconnect"));
      }
      return cells;
    });
    const total = Number(data?.total) || 0;
    if (offset > 0 && offset >= total) {
      // The page emptied (clients left): show the last one that has clients.
      offset = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
      shown = "";
      return refresh();
    }
    fill(
      holder,
      pager("clients", total, offset, PAGE, (o) => {
        offset = o;
        shown = "";
        refresh().catch((e) => ctx.fail("cannot list clients", e));
      }),
      table(
        `${total} connected client${total === 1 ? "" : "s"}`,
        headers,
        rows,
        prefix ? `No connected client id starts with “${prefix}”.` : "No clients connected.",
      ),
    );
    holder.dataset.total = String(total);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    shown = "";
    offset = 0;
    refresh().catch((e) => ctx.fail("search failed", e));
  });
  return {
    refresh,
    stop() {
      shown = "";
      offset = 0;
      holder.replaceChildren();
      closeDetails();
    },
  };
}
