/**
 * Headless Debian Chromium driven by playwright-core, for the dashboard's browser tests.
 * Missing Chromium skips outside CI and fails with CI=true (see ignoreWithout/requireBinary).
 */
import type { Page } from "playwright-core";
import type { Defer } from "./broker.ts";
import { ignoreWithout, requireBinary } from "../transport/helpers.ts";

export const CHROMIUM = "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** `ignore` for a test that needs Chromium. */
export const ignoreWithoutChromium = (what: string): boolean => ignoreWithout(CHROMIUM, what);

/**
 * A fresh page in its own Chromium profile (so no login carries over), closed by `defer`.
 * Page errors are collected in `errors` so a test can assert there were none.
 */
export async function browserPage(defer: Defer): Promise<{ page: Page; errors: string[] }> {
  requireBinary(CHROMIUM, "install the Debian package chromium");
  const { chromium } = await import("playwright-core");
  const profile = await Deno.makeTempDir({ prefix: "mqttwk-chromium-" });
  defer(() => Deno.remove(profile, { recursive: true }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ARGS,
    headless: true,
    viewport: { width: 1280, height: 860 },
  });
  defer(() => context.close());
  const page = context.pages()[0] ?? await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, errors };
}

/**
 * Waits until `js` (run in the page) is truthy. A string: Deno's checker lacks DOM types. Polled
 * from here with page.evaluate (DevTools evaluation, which the dashboard's Content-Security-Policy
 * does not govern) because waitForFunction's in-page polling needs eval, which that policy forbids.
 */
export async function until(page: Page, js: string, timeout = 15_000): Promise<unknown> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await page.evaluate(js);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for: ${js}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
