import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/load.ts";

/** A read function over an in-memory set of files; other paths behave like missing files. */
export function fakeFiles(files: Record<string, string>): (path: string) => string {
  return (path) => {
    if (path in files) return files[path];
    throw new Deno.errors.NotFound(`No such file: ${path}`);
  };
}

/** No files at all, so the loader cannot pick up the repository's config/application.yaml. */
export const noFiles = fakeFiles({});

/** Asserts that `fn` throws a ConfigError whose message contains every one of `parts`. */
export function assertConfigError(fn: () => unknown, ...parts: string[]): ConfigError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${caught}`);
  for (const part of parts) {
    assert.ok(caught.message.includes(part), `"${caught.message}" should mention "${part}"`);
  }
  return caught;
}
