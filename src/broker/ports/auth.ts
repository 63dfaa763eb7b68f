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

/** What an enhanced authentication (MQTT 5.0 4.12) starts from. */
export interface EnhancedAuthRequest extends ClientInfo {
  /** The Authentication Method of the CONNECT (one of EnhancedAuthenticator.methods). */
  method: string;
  /** True for a re-authentication (AUTH 0x19) of a connected client. */
  reauthenticate: boolean;
}

/**
 * One step's outcome. `continue`: send AUTH 0x18 with `data` and wait for the client's next AUTH.
 * `success`: `username` is the identity the client proved; `data` goes in the CONNACK (or the
 * AUTH 0x00 of a re-authentication). `failure`: `reasonCode` is a 5.0 CONNACK code (0x87 not
 * authorized, 0x86 bad user name or password, 0x88 server unavailable, 0x8C bad method).
 */
export type AuthStep =
  | { status: "continue"; data?: Uint8Array }
  | { status: "success"; username: string; data?: Uint8Array }
  | { status: "failure"; reasonCode: number; reason: string };

/** One exchange, from the CONNECT (or AUTH 0x19) to success or failure. */
export interface AuthExchange {
  /**
   * The client's Authentication Data: first from the CONNECT (or AUTH 0x19), then from each of
   * its AUTH 0x18 packets. Called again only after a `continue`.
   */
  step(data: Uint8Array | undefined): AuthStep | Promise<AuthStep>;
}

/** Enhanced authentication: the methods offered and a new exchange for each attempt. */
export interface EnhancedAuthenticator {
  /** Authentication Methods offered; a CONNECT naming another gets 0x8C (MQTT-4.12.0-1). */
  readonly methods: readonly string[];
  start(req: EnhancedAuthRequest): AuthExchange;
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
