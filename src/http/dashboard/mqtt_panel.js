/**
 * The MQTT client panel: connects from this browser to the broker's own WebSocket listener
 * (address from /api/v1/status, ws or wss after the page's protocol), subscribes, publishes and
 * lists what arrives. Uses mqtt_client.js, not mqtt.js (which is a test-only dependency).
 */
import { MqttClient } from "./mqtt_client.js";
import { byId, fill, h } from "./dom.js";

/** Most received messages listed; older ones are dropped from the list. */
const MAX_SHOWN = 200;
const PREVIEW = 2000;

/**
 * The ws:// or wss:// URL of the broker's WebSocket listener as this page reaches the broker:
 * same host name as the page, the listener's port and path; wss when the page is https.
 * @param {{kind:string, port:number, path?:string}[]} listeners
 * @param {{protocol:string, hostname:string}} loc
 */
export function brokerWsUrl(listeners, loc) {
  const want = loc.protocol === "https:" ? ["wss", "ws"] : ["ws", "wss"];
  for (const kind of want) {
    const l = (listeners ?? []).find((x) => x.kind === kind);
    if (!l) continue;
    const host = loc.hostname.includes(":") && !loc.hostname.startsWith("[")
      ? `[${loc.hostname}]`
      : loc.hostname;
    return `${kind}://${host}:${l.port}${l.path ?? "/mqtt"}`;
  }
  return "";
}

/** Text of a payload: UTF-8 when it is valid UTF-8, otherwise hex. */
export function payloadText(bytes) {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), binary: false };
  } catch {
    return { text: [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" "), binary: true };
  }
}

/** The MQTT panel view; see app.js for the view interface. */
export function mqttView(ctx) {
  const connectForm = byId("mqtt-connect");
  const subForm = byId("mqtt-subscribe");
  const pubForm = byId("mqtt-publish");
  const stateEl = byId("mqtt-state");
  const list = byId("mqtt-messages");
  const subsList = byId("mqtt-subscriptions");
  /** @type {MqttClient | null} */
  let client = null;
  const subs = new Map();
  let received = 0;

  function setState(text, state) {
    stateEl.textContent = text;
    stateEl.dataset.state = state;
    connectForm.elements.namedItem("connect").disabled = state !== "disconnected";
    connectForm.elements.namedItem("disconnect").disabled = state === "disconnected";
  }

  function renderSubs() {
    fill(subsList, [...subs].map(([f, q]) => h("li", {}, h("code", {}, f), ` (QoS ${q})`)));
  }

  function show(m) {
    received++;
    const { text, binary } = payloadText(m.payload);
    list.prepend(h(
      "li",
      {},
      h(
        "div",
        { class: "meta" },
        new Date().toLocaleTimeString(),
        ` · QoS ${m.qos}`,
        m.retain ? " · retained" : "",
        binary ? " · binary (hex)" : "",
      ),
      h("code", { class: "topic" }, m.topic),
      h("div", { class: "payload" }, text.length > PREVIEW ? `${text.slice(0, PREVIEW)}…` : text),
    ));
    while (list.children.length > MAX_SHOWN) list.lastElementChild?.remove();
    list.dataset.count = String(received);
  }

  async function connect(ev) {
    ev.preventDefault();
    const f = new FormData(connectForm);
    const c = client = new MqttClient(String(f.get("url")), {
      clientId: String(f.get("clientId")),
      username: String(f.get("username") || ""),
      password: String(f.get("password") || ""),
      keepalive: 30,
    });
    c.on("message", show);
    c.on("close", ({ reason }) => {
      if (client !== c) return;
      client = null;
      subs.clear();
      renderSubs();
      setState(`disconnected: ${reason}`, "disconnected");
    });
    c.on("error", (e) => ctx.notify(`MQTT: ${e.message}`, true));
    setState("connecting…", "connecting");
    try {
      await c.connect();
      setState(`connected as ${c.options.clientId}`, "connected");
      ctx.notify("");
    } catch (e) {
      if (client === c) client = null;
      setState(`disconnected: ${e.message}`, "disconnected");
    }
  }

  async function subscribe(ev) {
    ev.preventDefault();
    const f = new FormData(subForm);
    const filter = String(f.get("filter"));
    if (!client) return ctx.notify("Connect first.", true);
    try {
      const granted = await client.subscribe(filter, Number(f.get("qos")));
      if (granted === 0x80) return ctx.notify(`Subscription to ${filter} refused.`, true);
      subs.set(filter, granted);
      renderSubs();
      ctx.notify(`Subscribed to ${filter} (QoS ${granted}).`);
    } catch (e) {
      ctx.notify(`Subscribe failed: ${e.message}`, true);
    }
  }

  async function unsubscribe() {
    const filter = String(new FormData(subForm).get("filter"));
    if (!client) return;
    try {
      await client.unsubscribe(filter);
      subs.delete(filter);
      renderSubs();
      ctx.notify(`Unsubscribed from ${filter}.`);
    } catch (e) {
      ctx.notify(`Unsubscribe failed: ${e.message}`, true);
    }
  }

  async function publish(ev) {
    ev.preventDefault();
    const f = new FormData(pubForm);
    const topic = String(f.get("topic"));
    if (!client) return ctx.notify("Connect first.", true);
    try {
      await client.publish(topic, String(f.get("payload") ?? ""), {
        qos: Number(f.get("qos")),
        retain: f.get("retain") === "on",
      });
      ctx.notify(`Published to ${topic}.`);
    } catch (e) {
      ctx.notify(`Publish failed: ${e.message}`, true);
    }
  }

  connectForm.addEventListener("submit", connect);
  connectForm.elements.namedItem("disconnect").addEventListener("click", () => client?.end());
  subForm.addEventListener("submit", subscribe);
  subForm.elements.namedItem("unsubscribe").addEventListener("click", unsubscribe);
  pubForm.addEventListener("submit", publish);
  byId("mqtt-clear").addEventListener("click", () => list.replaceChildren());

  return {
    start() {
      const el = connectForm.elements;
      el.namedItem("url").value = brokerWsUrl(ctx.status?.listeners, location);
      el.namedItem("clientId").value = `dashboard-${Math.random().toString(36).slice(2, 10)}`;
      const login = ctx.login();
      el.namedItem("username").value = login?.username ?? "";
      el.namedItem("password").value = login?.password ?? "";
      setState("disconnected", "disconnected");
    },
    stop() {
      client?.end();
      client = null;
      subs.clear();
      renderSubs();
      list.replaceChildren();
      received = 0;
    },
  };
}
