/**
 * The authentication and authorization hooks the core calls (src/auth/ implements them).
 */
import type { ClientInfo } from "../model.ts";

export interface AuthRequest extends ClientInfo {
  password?: Uint8Array;
}

/**
 * `reasonCode` is a 3.1.1 CONNACK code: 3 server unavailable (e.g. auth backend down), 4 bad
 * credentials, 5 not authorized. `verified`: the username was proven (a password or token was
 * checked), so the client counts against its user for the session limits, not its address.
 */
export type AuthResult = { ok: true; verified?: boolean } | {
  ok: false;
  reasonCode: number;
  reason?: string;
};

export interface Authenticator {
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult>;
}

/** Synchronous on purpose: it runs on the publish hot path. */
export interface Authorizer {
  canPublish(client: ClientInfo, topic: string): boolean;
  canSubscribe(client: ClientInfo, filter: string): boolean;
  /**
   * For a filter canSubscribe granted: whether some topics it matches may not be read, so that
   * each message is checked with canSubscribe(client, topic) on delivery (mosquitto's rule for a
   * wildcard across a deny rule). Absent: never.
   */
  checkEachDelivery?(client: ClientInfo, filter: string): boolean;
}

export const allowAll: Authenticator & Authorizer = {
  authenticate: () => ({ ok: true }),
  canPublish: () => true,
  canSubscribe: () => true,
};
