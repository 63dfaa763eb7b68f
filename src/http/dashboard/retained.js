/**
 * Retained messages: list by topic filter (default #), a payload preview (UTF-8 as text, binary
 * as base64, both cut short), and a Delete button for admins (DELETE /api/v1/retained/{topic}).
 */
import { call, get, seg } from "./api.js";
import { byId, fill, h, pager, table } from "./dom.js";

const PAGE = 50;
const PREVIEW = 200;

/** The retained message browser; see app.js for the view interface. */
export function retainedView(ctx) {
  const form = byId("retained-form");
  const holder = byId("retained-table");
  let shown = "";
  let offset = 0;

  async function remove(topic) {
    try {
      await call("DELETE", `/api/v1/retained/${seg(topic)}`);
      ctx.notify(`Deleted the retained message on ${topic}.`);
      shown = "";
      await refresh();
    } catch (e) {
      ctx.fail(`cannot delete the retained message on ${topic}`, e);
    }
  }

  async function refresh() {
    const filter = String(new FormData(form).get("filter") || "#");
    const data = await get(
      `/api/v1/retained?${new URLSearchParams({
        filter,
        limit: String(PAGE),
        offset: String(offset),
      })}`,
    );
    const key = JSON.stringify([data, ctx.isAdmin()]);
    if (key === shown) return;
    shown = key;
    const admin = ctx.isAdmin();
    const items = Array.isArray(data?.items) ? data.items : [];
    const headers = ["Topic", "QoS", "Size", "Payload"];
    if (admin) headers.push("Actions");
    const total = Number(data?.total) || 0;
    if (offset > 0 && offset >= total) {
      offset = Math.max(0, Math.floor((total - 1) / PAGE) * PAGE);
      shown = "";
      return refresh();
    }
    fill(
      holder,
      pager("retained messages", total, offset, PAGE, (o) => {
        offset = o;
        shown = "";
        refresh().catch((e) => ctx.fail("cannot list retained messages", e));
      }),
      table(
        `${total} retained message${total === 1 ? "" : "s"} matching ${filter}`,
        headers,
        items.map((m) => {
          const payload = String(m.payload ?? "");
          const cells = [
            h("code", {}, m.topic),
            m.qos,
            `${m.size ?? payload.length} B`,
            h(
              "span",
              { class: "mono", title: m.encoding === "base64" ? "binary, shown as base64" : null },
              m.encoding === "base64" ? "base64: " : "",
              payload.length > PREVIEW ? `${payload.slice(0, PREVIEW)}…` : payload,
            ),
          ];
          if (admin) {
            cells.push(h("button", {
              type: "button",
              class: "danger",
              "aria-label": `Delete retained ${m.topic}`,
              onclick: () => remove(m.topic),
            }, "Delete"));
          }
          return cells;
        }),
        "No retained messages match.",
      ),
    );
    holder.dataset.total = String(total);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    shown = "";
    offset = 0;
    refresh().catch((e) => ctx.fail("cannot list retained messages", e));
  });
  return {
    refresh,
    stop() {
      shown = "";
      offset = 0;
      holder.replaceChildren();
    },
  };
}
