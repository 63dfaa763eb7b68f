/**
 * The web dashboard in a real headless Chromium (playwright-core), against an in-process broker
 * with the HTTP API, a ws:// listener and password-file users (an admin and a read-only one):
 * log in, watch the charts move, find and kick a client, delete a retained message, and publish
 * and receive through the dashboard's MQTT panel, with mqtt.js on the other end.
 *
 * With MQTTWK_DASHBOARD_SCREENSHOTS=<dir> it also saves screenshots of the main views there
 * (docs/images holds the ones the README shows).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { IClientOptions } from "mqtt";
import { createApp } from "../../src/app/app.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import { formatKeys, hashKey, newKey } from "../../src/http/api_keys.ts";
import { appConfig, logBook } from "../helpers/app.ts";
import { type Defer, scoped, uid } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { browserPage, ignoreWithoutChromium, until } from "../helpers/chromium.ts";

const SHOTS = Deno.env.get("MQTTWK_DASHBOARD_SCREENSHOTS");
const ADMIN = { user: "admin", password: "s3cret-Ädmin" };
const VIEWER = { user: "viewer", password: "only-looking" };

/** Broker with HTTP API, ws listener and two password-file users; MQTT needs a password too. */
async function dashboardBroker(defer: Defer) {
  const dir = await Deno.makeTempDir({ prefix: "mqttwk-dashboard-" });
  defer(() => Deno.remove(dir, { recursive: true }));
  const pwFile = `${dir}/passwords`;
  const lines = await Promise.all(
    [ADMIN, VIEWER].map(async (u) =>
      `${u.user}:${formatHash(await hashPassword(u.password, 1000))}`
    ),
  );
  await Deno.writeTextFile(pwFile, lines.join("\n") + "\n");
  const log = logBook();
  const app = createApp(
    appConfig([
      "--mqttwk.broker.websocket-enabled=true",
      "--mqttwk.broker.websocket-port=0",
      "--mqttwk.broker.mqtt-password-must=true",
      `--mqttwk.broker.auth.password-file=${pwFile}`,
      "--mqttwk.broker.http-enabled=true",
      "--server.port=0",
      ...HTTP_ROLE_FLAGS,
    ]),
    { log },
  );
  await app.start();
  defer(() => app.stop());
  const tcp = Number((await log.waitFor(/listening tcp \S+:(\d+)/)).match(/:(\d+)$/)![1]);
  const httpPort = app.metrics!.port;
  return {
    app,
    log,
    mqttUrl: `mqtt://127.0.0.1:${tcp}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    mqtt: (clientId = uid("t"), opts: IClientOptions = {}) =>
      connectMqttJs(`mqtt://127.0.0.1:${tcp}`, {
        clientId,
        username: ADMIN.user,
        password: ADMIN.password,
        ...opts,
      }),
  };
}

/** Role assignment for the HTTP API users (see the API's config keys). */
const HTTP_ROLE_FLAGS = [
  `--mqttwk.http.admin-users=${ADMIN.user}`,
  `--mqttwk.http.read-users=${VIEWER.user}`,
];

async function logIn(page: Page, who: { user: string; password: string }) {
  await page.getByLabel("Username", { exact: true }).fill(who.user);
  await page.getByLabel("Password", { exact: true }).fill(who.password);
  await page.getByRole("button", { name: "Log in" }).click();
}

async function shot(page: Page, name: string) {
  if (!SHOTS) return;
  await Deno.mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/dashboard-${name}.png` });
}

Deno.test({
  name:
    "the dashboard in Chromium shows, kicks, deletes and publishes as admin, only reads as viewer",
  ignore: ignoreWithoutChromium("dashboard browser"),
  fn: () =>
    scoped(async (defer) => {
      const b = await dashboardBroker(defer);
      const basic = (u: { user: string; password: string }) =>
        "Basic " +
        btoa(String.fromCharCode(...new TextEncoder().encode(`${u.user}:${u.password}`)));
      const { page, errors: pageErrors } = await browserPage(defer);
      await page.goto(`${b.httpUrl}/`);

      // A wrong password is refused on the page, without a browser auth dialog.
      await logIn(page, { user: ADMIN.user, password: "wrong" });
      await page.getByText("Wrong username, password or API key.").waitFor();

      await logIn(page, ADMIN);
      await page.getByText("admin (admin)").waitFor();
      await until(page, `document.getElementById("stream-state").dataset.state === "live"`);

      // The messages chart moves while a test client publishes (bounded: 20 s at most).
      const publisher = await b.mqtt();
      defer(() => publisher.close());
      const chartIn = `JSON.parse(document.getElementById("chart-messages").dataset.last ?? "{}")` +
        `.messagesInPerSec > 0`;
      let moved = false;
      const deadline = Date.now() + 20_000;
      while (!moved && Date.now() < deadline) {
        await Promise.all(
          Array.from({ length: 10 }, (_, k) => publisher.publish(`load/${k}`, "x", { qos: 1 })),
        );
        moved = await page.evaluate(chartIn) as boolean;
      }
      assert.ok(moved, "the messages-in chart never showed a rate above 0");
      // For the README's screenshot, some history on the charts (bounded: 30 s at most).
      const until20 = Date.now() + 30_000;
      while (SHOTS && Date.now() < until20) {
        const points = Number(await page.getAttribute("#chart-messages", "data-points"));
        if (points >= 20) break;
        await Promise.all(
          Array.from({ length: 5 + points }, (_, k) => publisher.publish(`load/${k}`, "x")),
        );
        // One round per chart sample: wait for the next one.
        await until(
          page,
          `Number(document.getElementById("chart-messages").dataset.points) > ${points}`,
        );
      }
      assert.match(await page.locator("#readout-messages").textContent() ?? "", /in: [1-9]/);
      await shot(page, "overview");

      // A client the test connects shows up in the table; Disconnect kicks it.
      const victimId = uid("victim");
      const victim = await b.mqtt(victimId);
      defer(() => victim.close());
      const kicked = new Promise<void>((res) => victim.client.once("close", () => res()));
      await page.getByRole("button", { name: "Clients", exact: true }).click();
      await page.getByLabel("Client id prefix", { exact: true }).fill(victimId);
      await page.getByRole("button", { name: "Search" }).click();
      const kick = page.getByRole("button", { name: `Disconnect ${victimId}` });
      await kick.waitFor({ timeout: 15_000 });
      await page.getByLabel("Client id prefix", { exact: true }).fill("");
      await page.getByRole("button", { name: "Search" }).click();
      await shot(page, "clients");
      await kick.click();
      await kicked;
      await page.getByText(`Disconnected ${victimId}.`).waitFor();
      await kick.waitFor({ state: "detached", timeout: 15_000 });

      // The retained browser pages through more messages than fit on one page (50).
      const many = uid("dash/many");
      await Promise.all(
        Array.from({ length: 51 }, (_, i) =>
          publisher.publish(`${many}/${i}`, `m${i}`, { qos: 1, retain: true })),
      );
      await page.getByRole("button", { name: "Retained", exact: true }).click();
      await page.getByLabel("Retained topic filter").fill(`${many}/#`);
      await page.getByRole("button", { name: "Show retained" }).click();
      await page.getByText("1–50 of 51").waitFor({ timeout: 15_000 });
      assert.equal(await page.locator("#retained-table tbody tr").count(), 50);
      await page.getByRole("button", { name: "Next page of retained messages" }).click();
      await page.getByText("51–51 of 51").waitFor();
      assert.equal(await page.locator("#retained-table tbody tr").count(), 1);

      // The retained browser deletes a retained message for good.
      const retainedTopic = uid("dash/retained");
      await publisher.publish(retainedTopic, "keep me", { qos: 1, retain: true });
      await page.getByRole("button", { name: "Retained", exact: true }).click();
      await page.getByLabel("Retained topic filter").fill(retainedTopic);
      await page.getByRole("button", { name: "Show retained" }).click();
      const del = page.getByRole("button", { name: `Delete retained ${retainedTopic}` });
      await del.click({ timeout: 15_000 });
      await del.waitFor({ state: "detached", timeout: 15_000 });
      const gone = await fetch(
        `${b.httpUrl}/api/v1/retained/${encodeURIComponent(retainedTopic)}`,
        { headers: { Authorization: basic(ADMIN) } },
      );
      await gone.body?.cancel();
      assert.equal(gone.status, 404);
      const late = await b.mqtt();
      defer(() =>
        late.close()
      );
      await late.subscribe(retainedTopic, 1);
      await late.sync();
      assert.equal(late.inbox.on(retainedTopic).length, 0, "the retained message came back");

      // An offline persistent session is listed with its subscription, and deleted.
      const sleeperId = uid("sleeper");
      const sleepFilter = `${uid("dash/sleep")}/#`;
      const sleeper = await b.mqtt(sleeperId, { clean: false });
      await sleeper.subscribe(sleepFilter, 1);
      await sleeper.close();
      await page.getByRole("button", { name: "Sessions", exact: true }).click();
      await page.getByLabel("Session client id prefix").fill(sleeperId);
      await page.getByLabel("Subscriber client id").fill(sleeperId);
      await page.getByRole("button", { name: "Show sessions" }).click();
      const sessionRow = page.locator("#sessions-table tr", { hasText: sleeperId });
      await sessionRow.getByText("offline").waitFor({ timeout: 15_000 });
      await page.locator("#subs-table").getByText(sleepFilter).waitFor({ timeout: 15_000 });
      await page.getByRole("button", { name: `Delete session ${sleeperId}` }).click();
      await sessionRow.waitFor({ state: "detached", timeout: 15_000 });
      const left = await fetch(`${b.httpUrl}/api/v1/sessions?prefix=${sleeperId}`, {
        headers: { Authorization: basic(ADMIN) },
      });
      assert.equal((await left.json()).total, 0);

      // The cluster view lists this node as healthy and says the Kafka bridge is off.
      await page.getByRole("button", { name: "Cluster", exact: true }).click();
      const nodeRow = page.locator("#cluster-info tr", { hasText: b.app.nodeId });
      await nodeRow.getByText("healthy", { exact: true }).waitFor();
      assert.equal(await page.locator("#kafka-state").textContent(), "off");

      // The MQTT panel connects over the broker's ws listener with the login's credentials.
      const topic = uid("dash/panel");
      const listener = await b.mqtt();
      defer(() => listener.close());
      await listener.subscribe(`${topic}/out`, 1);
      await page.getByRole("button", { name: "MQTT client", exact: true }).click();
      assert.match(
        await page.getByLabel("Broker WebSocket URL").inputValue(),
        /^ws:\/\/127\.0\.0\.1:\d+\//,
      );
      await page.getByRole("button", { name: "Connect", exact: true }).click();
      await until(page, `document.getElementById("mqtt-state").dataset.state === "connected"`);
      await page.getByLabel("Subscribe topic filter").fill(`${topic}/in`);
      await page.getByRole("button", { name: "Subscribe", exact: true }).click();
      await page.getByText(`Subscribed to ${topic}/in (QoS 1).`).waitFor();
      await publisher.publish(`${topic}/in`, "to the browser ✓ <b>not bold</b>", { qos: 1 });
      await page.locator("#mqtt-messages").getByText("to the browser ✓ <b>not bold</b>").waitFor();
      await page.getByLabel("Publish topic").fill(`${topic}/out`);
      await page.getByLabel("Payload").fill("from the panel ✓");
      await page.getByRole("button", { name: "Publish", exact: true }).click();
      const m = await listener.inbox.waitFor((x) => x.topic === `${topic}/out`, 10_000);
      assert.equal(m.payload, "from the panel ✓");
      assert.equal(m.qos, 1);
      await shot(page, "mqtt");
      await page.getByRole("button", { name: "Disconnect", exact: true }).click();
      await until(page, `document.getElementById("mqtt-state").dataset.state === "disconnected"`);

      // A read-only user sees clients but gets no Disconnect button, and the API says 403.
      await page.getByRole("button", { name: "Log out" }).click();
      await logIn(page, VIEWER);
      await page.getByText("viewer (read-only)").waitFor();
      // Markup in a client id is shown as text, never parsed.
      const watchedId = `${uid("watched")}<b id="injected">&amp;</b>`;
      const watched = await b.mqtt(watchedId);
      defer(() => watched.close());
      await page.getByRole("button", { name: "Clients", exact: true }).click();
      await page.getByLabel("Client id prefix", { exact: true }).fill(watchedId);
      await page.getByRole("button", { name: "Search" }).click();
      const idButton = page.getByRole("button", { name: watchedId, exact: true });
      await idButton.waitFor({ timeout: 15_000 });
      assert.equal(await page.locator("#injected").count(), 0);
      await watched.subscribe("dash/watched/+", 1);
      await idButton.click();
      await page.locator("#client-details").getByText("dash/watched/+").waitFor();
      assert.equal(await page.getByRole("button", { name: /^Disconnect/ }).count(), 0);
      const refused = await fetch(`${b.httpUrl}/api/v1/clients/${encodeURIComponent(watchedId)}`, {
        method: "DELETE",
        headers: { Authorization: basic(VIEWER), "X-Requested-With": "mqttwk-dashboard" },
      });
      await refused.body?.cancel();
      assert.equal(refused.status, 403);
      assert.equal(watched.client.connected, true);
      assert.deepEqual(pageErrors, []);
    }),
});

Deno.test({
  name: "the dashboard logs in with a read-only API key, and opens directly when no login is set",
  ignore: ignoreWithoutChromium("dashboard browser"),
  fn: () =>
    scoped(async (defer) => {
      const dir = await Deno.makeTempDir({ prefix: "mqttwk-dashboard-keys-" });
      defer(() => Deno.remove(dir, { recursive: true }));
      const key = newKey();
      const keysFile = `${dir}/api-keys`;
      await Deno.writeTextFile(
        keysFile,
        formatKeys([{ name: "wallboard", role: "read", hash: hashKey(key) }]),
      );
      const start = async (flags: string[]) => {
        const log = logBook();
        const app = createApp(
          appConfig(["--mqttwk.broker.http-enabled=true", "--server.port=0", ...flags]),
          { log },
        );
        await app.start();
        defer(() => app.stop());
        return `http://127.0.0.1:${app.metrics!.port}`;
      };
      const withKey = await start([`--mqttwk.http.api-keys-file=${keysFile}`]);
      const open = await start([`--mqttwk.http.api-keys-file=${dir}/no-keys-here`]);
      const { page, errors: pageErrors } = await browserPage(defer);

      await page.goto(`${withKey}/`);
      await page.getByLabel("API key").fill("mqk_not-a-key");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByText("Wrong username, password or API key.").waitFor();
      await page.getByLabel("API key").fill(key);
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByText("wallboard (read-only)").waitFor();
      // The stored login survives a reload of the tab.
      await page.reload();
      await page.getByText("wallboard (read-only)").waitFor();
      await until(page, `document.getElementById("stream-state").dataset.state === "live"`);

      // Loopback and neither users nor keys: the API is open, so the page skips the login.
      await page.getByRole("button", { name: "Log out" }).click();
      await page.goto(`${open}/`);
      await page.getByRole("button", { name: "Clients", exact: true }).waitFor();
      assert.equal(await page.locator("#login").isHidden(), true);
      assert.match(await page.locator("#who").textContent() ?? "", /\(admin\)/);
      assert.deepEqual(pageErrors, []);
    }),
});
