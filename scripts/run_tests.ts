/**
 * Runs the test suite in its three phases (everything else in parallel, then the hardening and
 * chaos suites alone, which measure under load), each with a time limit: a test that hangs fails
 * its phase, with the test's name in the output above (`deno test` names a test running for
 * minutes), instead of holding the whole run until CI's own limit kills it with no verdict.
 *
 * Usage: deno run --allow-run scripts/run_tests.ts (what `deno task test` runs after fmt, lint
 * and check). Extra arguments go to every `deno test`.
 */

interface Phase {
  name: string;
  args: string[];
  /** Minutes; about five times what the phase takes on a 2-core machine. */
  limitMin: number;
}

const PHASES: Phase[] = [
  {
    name: "parallel",
    args: ["--parallel", "--ignore=tests/hardening/,tests/chaos/", "tests/"],
    limitMin: 25,
  },
  { name: "hardening", args: ["tests/hardening/"], limitMin: 15 },
  { name: "chaos", args: ["tests/chaos/"], limitMin: 20 },
];

/**
 * Runs `deno test` with `args` in a process group of its own (so that on a timeout the servers
 * its tests started go too); resolves with its exit code, or null if it ran out of time.
 */
async function runPhase(phase: Phase, extra: string[]): Promise<number | null> {
  const child = new Deno.Command("setsid", {
    args: [Deno.execPath(), "test", "--allow-all", ...phase.args, ...extra],
    stdin: "null",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    console.error(
      `\nrun_tests: the ${phase.name} phase ran out of its ${phase.limitMin} minutes; the test ` +
        `named as running for minutes above hangs. Stopping the phase.`,
    );
    killGroup(child.pid, "SIGTERM");
    setTimeout(() => killGroup(child.pid, "SIGKILL"), 10_000);
  }, phase.limitMin * 60_000);
  const { code } = await child.status;
  clearTimeout(timer);
  if (timedOut) killGroup(child.pid, "SIGKILL");
  return timedOut ? null : code;
}

function killGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // already gone
  }
}

if (import.meta.main) {
  for (const phase of PHASES) {
    const started = Date.now();
    const code = await runPhase(phase, Deno.args);
    const took = ((Date.now() - started) / 1000).toFixed(0);
    if (code === 0) {
      console.log(`run_tests: ${phase.name} phase passed in ${took} s`);
      continue;
    }
    console.error(
      code === null
        ? `run_tests: ${phase.name} phase timed out after ${took} s`
        : `run_tests: ${phase.name} phase failed (exit ${code}) after ${took} s`,
    );
    Deno.exit(1);
  }
}
