/**
 * Sessions (connected and offline persistent ones, with a Delete button for admins) and
 * subscriptions (by client id and/or filter), both refreshed while shown.
 */
import { call, get, seg } from "./api.js";
import { byId, duration, fill, h, pager, table } from "./dom.js";

const PAGE = 50;

/** The sessions and subscriptions view; see app.js for the view interface. */
export function sessionsView(ctx) {
  const sForm = byId("sessions-form");
  const subForm = byId("subs-form");
  const sHolder = byId("sessions-table");
  const subHolder = byId("subs-table");
  let shown = "";
  let offset = 0;

  async function remove(id) {
    try {
      await call("DELETE", `/api/v1/sessions/${seg(id)}`);
      ctx.notify(`Deleted the session of ${id}.`);
      shown = "";
      await refresh();
    } catch (e) {
      ctx.fail(`cannot delete the session of ${id}`, e);
    }
  }

  async function refresh() {
    const sf = new FormData(sForm);
    const sq = new URLSearchParams({
      prefix: sf.get("prefix") ?? "",
      limit: String(PAGE),
      offset: String(offset),
    });
    if (sf.get("connected")) sq.set("connected", String(sf.get("connected")));
    const bf = new FormData(subForm);
    const bq = new URLSearchParams({ limit: String(PAGE) });
    if (bf.get("clientId")) bq.set("clientId", String(bf.get("clientId")));
    if (bf.get("filter")) bq.set("filter", String(bf.get("filter")));
    const [sessions, subs] = await Promise.all([
      get(`/api/v1/sessions?${sq}`),
      get(`/api/v1/subscriptions?${bq}`),
    ]);
    const key = JSON.stringify([sessions, subs, ctx.isAdmin()]);
    if (key === shown) return;
    shown = key;
    const total = Number(sessions?.total) || 0;
    if (offset > 0 && offset >= total) {
      offset = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
      shown = "";
      return refresh();
    }
    const admin = ctx.isAdmin();
    const sItems = Array.isArray(sessions?.items) ? sessions.items : [];
    const headers = ["Client id", "State", "Node", "Subscriptions", "Queued", "Expiry"];
    if (admin) headers.push("Actions");
    fill(
      sHolder,
      pager("sessions", total, offset, PAGE, (o) => {
        offset = o;
        shown = "";
        refresh().catch((e) => ctx.fail("cannot list sessions", e));
      }),
      table(
        `${total} session${total === 1 ? "" : "s"}`,
        headers,
        sItems.map((s) => {
          const cells = [
            h("code", {}, s.clientId),
            h("span", { class: s.connected ? "ok" : "" }, s.connected ? "connected" : "offline"),
            s.node ?? "–",
            s.subscriptions,
            s.queued,
            s.expiryInterval === undefined || s.expiryInterval === null
              ? "–"
              : s.expiryInterval >= 0xffffffff
              ? "never"
              : duration(s.expiryInterval),
          ];
          if (admin) {
            cells.push(h("button", {
              type: "button",
              class: "danger",
              "aria-label": `Delete session ${s.clientId}`,
              onclick: () => remove(s.clientId),
            }, "Delete"));
          }
          return cells;
        }),
        "No sessions.",
      ),
    );
    const bItems = Array.isArray(subs?.items) ? subs.items : [];
    fill(
      subHolder,
      table(
        `${Number(subs?.total) || 0} subscriptions` +
          (Number(subs?.total) > bItems.length ? `, first ${bItems.length} shown` : ""),
        ["Client id", "Filter", "QoS"],
        bItems.map((s) => [h("code", {}, s.clientId), h("code", {}, s.filter), s.qos]),
        "No subscriptions.",
      ),
    );
  }

  for (const f of [sForm, subForm]) {
    f.addEventListener("submit", (ev) => {
      ev.preventDefault();
      shown = "";
      offset = 0;
      refresh().catch((e) => ctx.fail("cannot list sessions", e));
    });
  }
  return {
    refresh,
    stop() {
      shown = "";
      offset = 0;
      sHolder.replaceChildren();
      subHolder.replaceChildren();
    },
  };
}
