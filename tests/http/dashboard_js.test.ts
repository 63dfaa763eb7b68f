/**
 * The dashboard's pure helpers (shipped to browsers as plain ES modules), run in Deno: the
 * server-sent-event splitter, the login header, the WebSocket URL the MQTT panel picks, payload
 * display and the chart's axis.
 */
import assert from "node:assert/strict";
import { authorization, base64Utf8, parseSse } from "../../src/http/dashboard/api.js";
import { brokerWsUrl, payloadText } from "../../src/http/dashboard/mqtt_panel.js";
import { LineChart } from "../../src/http/dashboard/chart.js";

Deno.test("server-sent events are split at blank lines, partial ones kept for later", () => {
  const a = parseSse('data: {"a":1}\n\ndata: {"b"');
  assert.deepEqual(a, { events: ['{"a":1}'], rest: 'data: {"b"' });
  const b = parseSse(a.rest + ":2}\r\n\r\n: comment\n\nevent: x\ndata:one\ndata: two\n\n");
  assert.deepEqual(b, { events: ['{"b":2}', "one\ntwo"], rest: "" });
});

Deno.test("a login becomes Basic with UTF-8 credentials, or Bearer for an API key", () => {
  assert.equal(base64Utf8("ä:✓"), btoa(String.fromCharCode(...new TextEncoder().encode("ä:✓"))));
  assert.equal(authorization({ username: "alice", password: "pw" }), `Basic ${btoa("alice:pw")}`);
  assert.equal(authorization({ apiKey: " mk_123 \n", username: "x" }), "Bearer mk_123");
});

Deno.test("the MQTT panel picks ws for http pages and wss for https, on the page's host", () => {
  const listeners = [
    { kind: "tcp", port: 1883 },
    { kind: "ws", port: 9995, path: "/mqtt" },
    { kind: "wss", port: 9443, path: "/mqtt" },
  ];
  assert.equal(
    brokerWsUrl(listeners, { protocol: "http:", hostname: "broker.lan" }),
    "ws://broker.lan:9995/mqtt",
  );
  assert.equal(
    brokerWsUrl(listeners, { protocol: "https:", hostname: "::1" }),
    "wss://[::1]:9443/mqtt",
  );
  assert.equal(
    brokerWsUrl([listeners[1]], { protocol: "https:", hostname: "h" }),
    "ws://h:9995/mqtt",
  );
  assert.equal(brokerWsUrl([listeners[0]], { protocol: "http:", hostname: "h" }), "");
});

Deno.test("payloads show as text when they are UTF-8 and as hex otherwise", () => {
  assert.deepEqual(payloadText(new TextEncoder().encode("grüße")), {
    text: "grüße",
    binary: false,
  });
  assert.deepEqual(payloadText(new Uint8Array([0xff, 0x00, 0x10])), {
    text: "ff 00 10",
    binary: true,
  });
});

Deno.test("the chart's y axis tops out at a round number above the largest value", () => {
  assert.equal(LineChart.niceMax(0), 1);
  assert.equal(LineChart.niceMax(0.3), 0.5);
  assert.equal(LineChart.niceMax(7), 10);
  assert.equal(LineChart.niceMax(130), 200);
  assert.equal(LineChart.niceMax(5000), 5000);
});
