/**
 * The open-file limit against the connection limit (issue 16, finding 11): too low a limit
 * refuses start-up naming what to change; a limit that lowers max-connections says so loudly.
 */
import assert from "node:assert/strict";
import { connectionBudget, MIN_FILE_LIMIT, RESERVED_FDS } from "../../src/app/connection_budget.ts";
import { appConfig, logBook } from "../helpers/app.ts";

Deno.test("an open-file limit too low for any client refuses to start, naming what to change", () => {
  const log = logBook();
  let message = "";
  try {
    connectionBudget(appConfig(), log, 150);
  } catch (err) {
    message = (err as Error).message;
  }
  console.log(`limit 150 (minimum ${MIN_FILE_LIMIT}): ${message}`);
  assert.match(message, /open-file limit 150/);
  assert.match(message, /ulimit -n/);
  assert.match(message, /mqttwk\.broker\.max-connections/);
});

Deno.test("an open-file limit that lowers max-connections warns with the numbers", () => {
  const log = logBook();
  const b = connectionBudget(appConfig(), log, 256);
  console.log(`limit 256: max-connections ${b.maxConnections}, socket budget ${b.socketBudget}`);
  assert.equal(b.socketBudget, 256 - RESERVED_FDS);
  assert.ok(b.maxConnections > 1 && b.maxConnections < b.socketBudget, `${b.maxConnections}`);
  assert.match(log.text(), /WARN LOWERED mqttwk\.broker\.max-connections from 19000 to \d+/);
  assert.match(log.text(), /ulimit -n/);
});
