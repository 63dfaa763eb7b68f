/**
 * An in-process app with its HTTP port on (a free port on loopback), and small fetch helpers
 * for the HTTP API tests.
 */
import assert from "node:assert/strict";
import { main as apiKey } from "../../scripts/api_key.ts";
import { type RunningApp, startApp } from "../helpers/app.ts";

/** A running app with the HTTP port's base URL. */
export interface HttpApp extends RunningApp {
  /** http://127.0.0.1:PORT */
  base: string;
}

/** Starts an app with `http-enabled` on a free port, plus `flags`. */
export async function startHttpApp(flags: string[] = []): Promise<HttpApp> {
  const running = await startApp([
    "--mqttwk.broker.http-enabled=true",
    "--server.port=0",
    ...flags,
  ]);
  const port = running.app.metrics!.port;
  return { ...running, base: `http://127.0.0.1:${port}` };
}

/** A fetch that reads the body as JSON (or text when it is not JSON). */
export async function call(
  base: string,
  path: string,
  init: RequestInit & { token?: string; basic?: [string, string] } = {},
  // Tests read whatever shape each route answers; a typed body per route would add nothing.
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("authorization", `Bearer ${init.token}`);
  if (init.basic) headers.set("authorization", `Basic ${btoa(init.basic.join(":"))}`);
  const res = await fetch(base + path, { ...init, headers });
  const text = await res.text();
  // deno-lint-ignore no-explicit-any
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}

/** Runs `fn` with console output captured; resolves to its result (lines in `out`). */
export async function quietly<T>(fn: () => Promise<T>, out: string[] = []): Promise<T> {
  const log = console.log;
  const err = console.error;
  console.log = (s: string) => out.push(s);
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
    console.error = err;
  }
}

/** Creates a key with the api-key tool and returns it (the tool prints it on stdout). */
export async function createKey(file: string, name: string, role: "admin" | "read") {
  const out: string[] = [];
  assert.equal(
    await quietly(() => apiKey(["create", name, "--role", role, "--file", file]), out),
    0,
  );
  return out[0];
}
