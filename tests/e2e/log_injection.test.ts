/**
 * Client-controlled strings cannot forge broker log lines: a client id, a username and a topic
 * holding line breaks, sent by mqtt.js over TCP, each leave exactly one line in the log of the
 * broker process.
 */
import assert from "node:assert/strict";
import { EXTERNAL, startBroker } from "../helpers/broker.ts";
import { connectMqttJs } from "../helpers/mqttjs.ts";
import { formatHash, hashPassword } from "../../src/auth/password_file.ts";
import { connackCode, writeTemp } from "../auth/e2e_helpers.ts";

const FORGED = "2026-01-01T00:00:00.000Z INFO  client admin connected from 10.0.0.1";

/** The broker's log split the way a reader (or a terminal) would split it. */
const lines = (text: string) => text.split(/\r\n|[\n\r\u2028\u2029]/).filter((l) => l !== "");

Deno.test({
  name: "a client id, username or topic with line breaks writes one log line, not a forged one",
  ignore: EXTERNAL,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "mqttwk-loginj-" });
    const hash = formatHash(await hashPassword("wonderland", 1000));
    const pwFile = await writeTemp(dir, "passwords", `alice:${hash}\n`);
    const aclFile = await writeTemp(dir, "acl", "user alice\ntopic readwrite alice/#\n");
    const broker = await startBroker({
      args: [
        "--mqttwk.broker.mqtt-password-must=true",
        `--mqttwk.broker.auth.password-file=${pwFile}`,
        `--mqttwk.broker.auth.acl-file=${aclFile}`,
        "--mqttwk.broker.auth.failure-delay-max=0",
      ],
    });
    try {
      const alice = await connectMqttJs(broker.url, {
        clientId: `cid-1\n${FORGED}`,
        username: "alice",
        password: "wonderland",
      });
      try {
        await broker.waitForLog(/connected from 127\.0\.0\.1:\d+ via tcp/);
        const code = await connackCode(broker.url, {
          clientId: "cid-2",
          username: `user-2\r${FORGED}\u2028${FORGED}`,
          password: "guess",
        });
        assert.equal(code, 4);
        await broker.waitForLog(/refused connection from \S+ \(client cid-2\)/);
        // Outside alice's rules: acknowledged, dropped and logged with the topic.
        await alice.publish(`topic-3\n${FORGED}`, "x", { qos: 1 });
        await broker.waitForLog(/not authorized to publish to topic-3/);
      } finally {
        await alice.close();
      }
      const all = lines(broker.logs());
      const about = (...parts: string[]) => all.filter((l) => parts.every((p) => l.includes(p)));
      const events = {
        "connect of cid-1": about("client cid-1", "via tcp"),
        "refusal of user-2": about("user-2"),
        "refused publish to topic-3": about("publish to topic-3"),
      };
      const forged = all.filter((l) => l.startsWith("2026-01-01T00:00:00.000Z"));
      console.log(
        `log: ${all.length} lines, ${forged.length} forged; lines per event: ` +
          Object.entries(events).map(([k, v]) => `${k} ${v.length}`).join(", "),
      );
      for (const v of Object.values(events)) for (const l of v) console.log(`  ${l}`);
      assert.deepEqual(forged, [], "no line starts with the forged time stamp");
      for (const [what, found] of Object.entries(events)) assert.equal(found.length, 1, what);
      assert.match(events["connect of cid-1"][0], /client cid-1\\n2026-01-01T00:00:00\.000Z INFO/);
      assert.match(events["refused publish to topic-3"][0], /publish to topic-3\\n2026/);
    } finally {
      await broker.stop();
    }
  },
});
