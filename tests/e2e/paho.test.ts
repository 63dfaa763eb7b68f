/** Interoperability with Eclipse Paho (the Python client, Debian's python3-paho-mqtt). */
import assert from "node:assert/strict";
import { startBroker, uid } from "../helpers/broker.ts";

const SCRIPT = new URL("./paho_client.py", import.meta.url).pathname;
const CI = Deno.env.get("CI") === "true";

/** A Python that can import paho: Debian's, which apt installs it for, or the one on PATH. */
function findPython(): string | null {
  for (const py of ["/usr/bin/python3", "python3"]) {
    try {
      const r = new Deno.Command(py, {
        args: ["-c", "import paho.mqtt.client"],
        stdout: "null",
        stderr: "null",
      }).outputSync();
      if (r.success) return py;
    } catch {
      // not installed
    }
  }
  return null;
}

const PYTHON = findPython();
if (!PYTHON && !CI) console.warn("SKIPPING paho tests: python3-paho-mqtt is not installed");

interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
}

async function paho(
  scenario: string,
  port: number,
  prefix: string,
  protocol: "31" | "311",
): Promise<Record<string, unknown>> {
  if (!PYTHON) throw new Error("CI=true and python3-paho-mqtt is not installed");
  const out = await new Deno.Command(PYTHON, {
    args: [SCRIPT, scenario, "127.0.0.1", String(port), prefix, protocol],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const err = new TextDecoder().decode(out.stderr).trim();
  let result: Record<string, unknown>;
  try {
    result = JSON.parse(text.split("\n").pop() ?? "");
  } catch {
    throw new Error(`paho ${scenario} printed no result (exit ${out.code}):\n${text}\n${err}`);
  }
  if (result.error) throw new Error(`paho ${scenario}: ${result.error}\n${err}`);
  return result;
}

Deno.test({
  name: "Eclipse Paho (Python) interoperates with the broker",
  ignore: !PYTHON && !CI,
  fn: async (t) => {
    const broker = await startBroker();
    try {
      for (const protocol of ["31", "311"] as const) {
        const v = protocol === "31" ? "MQTT 3.1" : "MQTT 3.1.1";

        await t.step(`${v}: QoS 0, 1 and 2 flows complete and arrive at their QoS`, async () => {
          const prefix = uid(`paho${protocol}`);
          const r = await paho("qos", broker.port, prefix, protocol);
          assert.deepEqual(r.granted, [2]);
          assert.deepEqual(r.completed, [true, true, true]);
          assert.deepEqual(
            r.received as Received[],
            [0, 1, 2].map((q) => ({
              topic: `${prefix}/qos`,
              payload: `q${q}`,
              qos: q,
              retain: false,
            })),
          );
        });

        await t.step(`${v}: a retained message on subscribe, then a will`, async () => {
          const prefix = uid(`paho${protocol}`);
          const r = await paho("retained-will", broker.port, prefix, protocol);
          assert.deepEqual(r.retained, [
            { topic: `${prefix}/r`, payload: "kept", qos: 1, retain: true },
          ]);
          assert.deepEqual((r.all as Received[])[1], {
            topic: `${prefix}/will`,
            payload: "gone",
            qos: 1,
            retain: false,
          });
        });

        await t.step(`${v}: a persistent session gets what was published while away`, async () => {
          const prefix = uid(`paho${protocol}`);
          const r = await paho("persistent", broker.port, prefix, protocol);
          assert.equal(r.firstPresent, 0);
          assert.equal(r.present, 1);
          assert.deepEqual(r.completed, [true, true, true]);
          assert.deepEqual(
            (r.received as Received[]).map((m) => [m.payload, m.qos]),
            [["m0", 1], ["m1", 1], ["m2", 1]],
          );
        });
      }
    } finally {
      await broker.stop();
    }
  },
});
