/**
 * Extension points the core calls through interfaces: authentication, authorization, and
 * message sinks (the Kafka bridge and the cluster forwarder plug in here).
 */
import type { StoredMessage } from "../store/store.ts";

export interface ClientInfo {
  clientId: string;
  username?: string;
  remoteAddress: string;
  transport: string;
  protocolVersion: number;
}

export interface AuthRequest extends ClientInfo {
  password?: Uint8Array;
}

/**
 * `reasonCode` is a 3.1.1 CONNACK code: 3 server unavailable (e.g. auth backend down), 4 bad
 * credentials, 5 not authorized.
 */
export type AuthResult = { ok: true } | { ok: false; reasonCode: number; reason?: string };

export interface Authenticator {
  authenticate(req: AuthRequest): AuthResult | Promise<AuthResult>;
}

/** Synchronous on purpose: it runs on the publish hot path. */
export interface Authorizer {
  canPublish(client: ClientInfo, topic: string): boolean;
  canSubscribe(client: ClientInfo, filter: string): boolean;
}

export const allowAll: Authenticator & Authorizer = {
  authenticate: () => ({ ok: true }),
  canPublish: () => true,
  canSubscribe: () => true,
};

/**
 * Receives every message accepted from a local client (after authorization, before the
 * publisher is acknowledged). Returning a promise delays the publisher's PUBACK/PUBREC until it
 * resolves (at-least-once hand-off); a rejection leaves the message unacknowledged.
 */
export interface MessageSink {
  accept(message: StoredMessage, from: ClientInfo): void | Promise<void>;
}

/** Lifecycle events (metrics, Kafka client events, cluster bookkeeping). */
export interface BrokerEvents {
  clientConnected?(client: ClientInfo): void;
  clientDisconnected?(client: ClientInfo, reason: string): void;
  subscribed?(client: ClientInfo, filter: string, qos: number): void;
  unsubscribed?(client: ClientInfo, filter: string): void;
}
