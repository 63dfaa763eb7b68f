/**
 * Keeps the scenarios of issues 15 and 18 from rotting: a smoke-sized run of each new kind (QoS 2,
 * many topics behind wildcards, WSS, retained subscribe storm, persistent-session drain, TLS
 * handshakes with resumption, idle WebSocket connections, mutual TLS) against MqttWk and Mosquitto, checking
 * only that every run completed with traffic. Not a timed test: nothing asserts on speed.
 */
import { ignoreUnless } from "./helpers/cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SCENARIOS = [
  "p2p-q2-16",
  "topics10k-q1-16",
  "p2p-q1-16-wss",
  "retained-storm",
  "drain-q1",
  "tls-hs-12-resume",
  "conn-ws",
  "p2p-q1-16-mtls",
];
const haveMosquitto = (() => {
  try {
    return Deno.statSync("/usr/sbin/mosquitto").isFile;
  } catch {
    return false;
  }
})();

interface Json {
  results: {
    scenario: string;
    broker: string;
    ok: boolean;
    error?: string;
    msgsPerSec: number;
    connections?: number;
  }[];
}

Deno.test({
  name: "bench: the transport and workload scenarios run end to end on MqttWk and Mosquitto",
  ignore: ignoreUnless(haveMosquitto, "mosquitto"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const json = await Deno.makeTempFile({ prefix: "bench-more-", suffix: ".json" });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 300_000);
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          "bench/run.ts",
          "--smoke",
          "--brokers",
          "mqttwk,mosquitto",
          "--scenarios",
          SCENARIOS.join(","),
          "--connections",
          "50",
          "--json",
          json,
        ],
        cwd: ROOT,
        stdout: "piped",
        stderr: "piped",
        signal: ac.signal,
      }).output();
    } finally {
      clearTimeout(timer);
    }
    const context = `exit ${out.code}\n--- stdout\n${new TextDecoder().decode(out.stdout)}\n` +
      `--- stderr\n${new TextDecoder().decode(out.stderr)}`;
    if (out.code !== 0) throw new Error(`bench failed: ${context}`);
    const data: Json = JSON.parse(await Deno.readTextFile(json));
    await Deno.remove(json).catch(() => {});
    for (const name of SCENARIOS) {
      for (const broker of ["mqttwk", "mosquitto"]) {
        const r = data.results.find((x) => x.scenario === name && x.broker === broker);
        if (!r) throw new Error(`no result for ${name} on ${broker}: ${context}`);
        if (!r.ok) throw new Error(`${name} on ${broker} failed: ${r.error}`);
        const progress = r.connections ?? r.msgsPerSec;
        if (!(progress > 0)) throw new Error(`${name} on ${broker}: nothing done`);
      }
    }
  },
});
