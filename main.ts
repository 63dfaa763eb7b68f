/**
 * MqttWk entry point: reads the configuration, runs the app (src/app/) and maps signals and
 * failures onto the process: SIGINT/SIGTERM stop it, SIGHUP reloads; exit 0, 1 (cannot
 * start) or 2 (bad configuration).
 */
import {
  ConfigError,
  HelpRequested,
  loadConfig,
  type LoadResult,
  MEMORY_REPORT_ENV,
} from "./src/config/load.ts";
import { createApp, StartFailed } from "./src/app/app.ts";

/** Environment variable enabling the pause test hook: milliseconds SIGUSR1 blocks for. */
export const PAUSE_HOOK_ENV = "MQTTWK_TEST_PAUSE_MS";

export async function main(args: string[]): Promise<number> {
  let loaded: LoadResult;
  try {
    loaded = loadConfig({ args, env: Deno.env.toObject() });
  } catch (err) {
    if (err instanceof HelpRequested) {
      console.log(err.message);
      return 0;
    }
    if (err instanceof ConfigError) {
      console.error(`mqttwk: configuration error: ${err.message}`);
      return 2;
    }
    throw err;
  }
  const app = createApp(loaded.config);
  // Registered before anything listens, so a SIGTERM right after start-up is still graceful.
  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  for (const w of loaded.warnings) app.log.warn(w);

  try {
    await app.start();
  } catch (err) {
    if (err instanceof StartFailed) return 1;
    throw err;
  }
  Deno.addSignalListener("SIGHUP", () => {
    app.log.info("SIGHUP received: reloading certificates, passwords and ACLs");
    void app.reload();
  });
  if (Deno.env.get(MEMORY_REPORT_ENV) === "1") {
    // One line, prefixed, so that a bench can find it among the log lines.
    Deno.addSignalListener("SIGUSR2", () => {
      void app.memory().then((m) => console.error(`mqttwk-memory ${JSON.stringify(m)}`));
    });
  }
  const pauseMs = Number(Deno.env.get(PAUSE_HOOK_ENV) ?? 0);
  if (pauseMs > 0) {
    // Test hook (fault injection): SIGUSR1 blocks this process's event loop for pauseMs, as a
    // long GC pause or a stalled VM would, without touching the clocks.
    Deno.addSignalListener("SIGUSR1", () => {
      app.log.warn(`test hook: blocking the event loop for ${pauseMs} ms`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
    });
  }
  const signal = await stopped;
  app.log.info(`${signal} received: shutting down`);
  await app.stop();
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
