/**
 * The CI-size fuzz campaign: 100,000 mutated MQTT 3.1 / 3.1.1 / 5.0 sequences (80,000 over TCP,
 * 20,000 over WebSocket) against a broker subprocess, with a well-behaved client timed the whole
 * way. `deno task fuzz` runs the same campaign with 1,000,000.
 *
 * The rate is bounded (1,200 sequences/s by default, MQTTWK_FUZZ_RATE to change it) and the
 * fuzzer runs at a lower priority: on a 2-core machine the fuzzer, the broker and the timed client
 * compete for the same cores, and unbounded the client's p99 measures that contention (about
 * 10 ms there, the broker at 60% of a core), not the broker. At 1,200/s the broker still spends
 * a third of a core on refusing malformed input. A failed run prints its seed;
 * MQTTWK_FUZZ_SEED=<seed> replays it.
 *
 * The p99 bound is the one figure the machine can take away: on a shared 2-core machine a run
 * right after the parallel phase once gave 19 ms with the broker at 64% of a core, where the same
 * seed and code gave 7.4 ms at 47% on their own. A campaign over the bound is therefore run once
 * more with a new seed, and the test fails when the second is over it too; crashes, lost
 * messages, open connections and memory are judged on every campaign, never retried.
 */
import assert from "node:assert/strict";
import { mib } from "./broker_process.ts";
import {
  type CampaignResult,
  campaignSeed,
  describeCampaign,
  RSS_GROWTH_LIMIT,
  runCampaign,
} from "./campaign.ts";

const TCP = 80_000;
const WS = 20_000;
const RATE = Number(Deno.env.get("MQTTWK_FUZZ_RATE") ?? 1200);

Deno.test({
  name: "100,000 fuzzed sequences over TCP and WebSocket: no crash, every connection answered " +
    "cleanly or closed, memory bounded, the good client loses nothing and keeps p99 within 10 ms",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  let r = await campaign(campaignSeed());
  if (r.good.p99 > 10) {
    console.log(`good client p99 ${r.good.p99.toFixed(2)} ms is over 10 ms: once more, new seed`);
    console.log(`CPU pressure: ${cpuPressure()}`);
    r = await campaign(campaignSeed(true));
  }
  assert.ok(r.good.p99 <= 10, `good client p99 ${r.good.p99.toFixed(2)} ms exceeds 10 ms`);
});

/** Runs one campaign and asserts everything but the latency bound. */
async function campaign(seed: number): Promise<CampaignResult> {
  console.log(`fuzz seed ${seed} (replay with MQTTWK_FUZZ_SEED=${seed}), rate ${RATE}/s`);
  const r = await runCampaign({ seed, tcpCount: TCP, wsCount: WS, concurrency: 64, rate: RATE });
  console.log(describeCampaign(r));
  const why = `\nbroker log tail:\n${r.logTail}`;
  assert.equal(r.crashes, 0, `the broker crashed${why}`);
  assert.equal(r.driver.tcp + r.driver.ws, TCP + WS);
  assert.equal(r.driver.failureCount, 0, `connections left open or answered malformed${why}`);
  assert.ok(
    r.rssPeak - r.rssBaseline < RSS_GROWTH_LIMIT,
    `broker RSS grew by ${mib(r.rssPeak - r.rssBaseline)} MiB (limit ${mib(RSS_GROWTH_LIMIT)})`,
  );
  assert.equal(r.good.lost, 0, "the good client lost QoS 1 messages");
  assert.ok(r.good.count > 1000, `only ${r.good.count} round trips were timed`);
  return r;
}

/** The kernel's CPU pressure line (how long runnable tasks waited for a core), for the log. */
function cpuPressure(): string {
  try {
    return Deno.readTextFileSync("/proc/pressure/cpu").split("\n")[0];
  } catch {
    return "unknown";
  }
}
