/**
 * Building DOM nodes without innerHTML: every value becomes a text node or an attribute set
 * through setAttribute, so data from the broker (client ids, topics, payloads) is never parsed
 * as markup.
 */

/**
 * Creates an element. `attrs` keys starting with "on" add listeners; `dataset` and `hidden` are
 * set as properties; other values become attributes (null/false leave them out).
 * Children may be nodes, strings/numbers (text nodes) or arrays of those; null is skipped.
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "hidden") el.hidden = Boolean(v);
    else if (k === "value") el.value = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children (same child rules as h()). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The element with this id; throws when the page lacks it (a bug, not a runtime state). */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`missing #${id}`);
  return el;
}

/** "3 s", "4 min", "2 h 5 min", "3 d 4 h" from seconds. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A number for display: integers as is, rates with one decimal. */
export function num(v) {
  const n = Number(v);
  if (!Number.isFinite(n)) return "–";
  return Number.isInteger(n) ? n.toLocaleString("en") : n.toFixed(1);
}

/** A time for display from ms epoch or ISO text; "–" when absent. */
export function when(v) {
  if (v === null || v === undefined || v === "") return "–";
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString();
}

/** A table with a caption, header row and body rows (arrays of cells: nodes or text). */
export function table(caption, headers, rows, empty = "Nothing to show.") {
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h(
      "tbody",
      {},
      rows.length === 0
        ? h("tr", {}, h("td", { colspan: headers.length, class: "empty" }, empty))
        : rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))),
    ),
  );
}

/**
 * Paging controls for a list of `total` items shown `limit` at a time from `offset`:
 * "Previous page" / "Next page" buttons (disabled at the ends) and an "a–b of n" readout.
 * @param {string} what e.g. "clients", for the buttons' accessible names
 * @param {(offset: number) => void} go
 */
export function pager(what, total, offset, limit, go) {
  if (total <= limit && offset === 0) return null;
  const last = Math.min(total, offset + limit);
  return h(
    "div",
    { class: "row pager", role: "navigation", "aria-label": `Pages of ${what}` },
    h("button", {
      type: "button",
      disabled: offset <= 0,
      "aria-label": `Previous page of ${what}`,
      onclick: () => go(Math.max(0, offset - limit)),
    }, "‹ Previous"),
    h("span", {}, total === 0 ? "none" : `${offset + 1}–${last} of ${total}`),
    h("button", {
      type: "button",
      disabled: last >= total,
      "aria-label": `Next page of ${what}`,
      onclick: () => go(offset + limit),
    }, "Next ›"),
  );
}
