/**
 * Runs the broker in-process through src/app/ (what main.ts runs), with a configuration built
 * from command-line style flags and a logger the test can read and wait on.
 */
import { type App, createApp } from "../../src/app/app.ts";
import { type Config, loadConfig } from "../../src/config/load.ts";
import type { Logger } from "../../src/log.ts";
import { noFiles } from "../config/helpers.ts";

/** Flags every in-process app gets first: loopback, a free TCP port, memory store, TCP only. */
export const BASE_FLAGS = [
  "--host",
  "127.0.0.1",
  "--port",
  "0",
  "--persistence",
  "memory",
  "--mqttwk.broker.websocket-enabled=false",
];

/** The configuration main.ts would build from BASE_FLAGS then `flags`, ignoring env and files. */
export function appConfig(flags: string[] = []): Config {
  return loadConfig({ args: [...BASE_FLAGS, ...flags], env: {}, readTextFile: noFiles }).config;
}

/** A logger that keeps its lines and lets a test wait for one. */
export interface LogBook extends Logger {
  lines: string[];
  text(): string;
  /** Resolves with the first line matching `re` (logged before or after the call). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

export function logBook(): LogBook {
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const put = (level: string) => (m: string) => {
    lines.push(`${level} ${m}`);
    for (const w of [...waiters]) w();
  };
  return {
    lines,
    level: "debug",
    enabled: () => true,
    debug: put("DEBUG"),
    info: put("INFO"),
    warn: put("WARN"),
    error: put("ERROR"),
    text: () => lines.join("\n"),
    waitFor: (re, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((l) => re.test(l));
          if (line === undefined) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(line);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no log line matched ${re} in ${timeoutMs} ms:\n${lines.join("\n")}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

export interface RunningApp {
  app: App;
  log: LogBook;
  host: string;
  /** The TCP listener's real port. */
  port: number;
  /** mqtt://host:port */
  url: string;
}

/** Creates and starts an app with only its TCP listener enabled. */
export async function startApp(flags: string[] = []): Promise<RunningApp> {
  const log = logBook();
  const app = createApp(appConfig(flags), { log });
  await app.start();
  const bound = app.listening();
  if (bound.length !== 1) {
    await app.stop();
    throw new Error(`expected only the TCP listener, got ${bound.map((l) => l.address)}`);
  }
  const { port } = bound[0];
  return { app, log, host: "127.0.0.1", port, url: `mqtt://127.0.0.1:${port}` };
}
