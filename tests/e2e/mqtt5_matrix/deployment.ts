/**
 * What the MQTT 5.0 matrix cases (cases.ts) need from a deployment: where clients connect, how a
 * persistent session's offline period is spent (a restart for the durable stores), and the flags
 * every deployment's broker is started with, so one case file runs unchanged against each.
 */
import type { IClientOptions } from "mqtt";

/** Transport of a deployment, as paho5_matrix.py names it. */
export type Transport = "tcp" | "tls" | "ws";

export interface Deployment {
  /** e.g. "tls+sqlite". */
  name: string;
  transport: Transport;
  /** True for the two-node cluster: clients on node 0 and node 1 meet through Redis. */
  cluster: boolean;
  /** URL of node `node` (single-broker deployments have one node and ignore it). */
  url(node: 0 | 1): string;
  /** Host and port of node `node` for the paho script. */
  address(node: 0 | 1): { host: string; port: number };
  /** CA certificate file for TLS deployments. */
  caFile?: string;
  /** mqtt.js options every client of this deployment needs (the CA for TLS). */
  clientOptions: IClientOptions;
  /** Everything the broker (every node) has logged so far, to wait for what clients cannot see. */
  logs(): string;
  /**
   * Runs while a persistent 5.0 session is offline with messages queued for it: restarts the
   * broker where the deployment has a durable store (SQLite, Redis), so the messages and their
   * properties must come back from the store. Returns once clients can connect again.
   */
  offline(): Promise<void>;
}

/** Topics the matrix ACL denies (SUBACK 0x87, PUBACK 0x87). */
export const DENIED_PREFIX = "m5denied";
/** Response Information every matrix broker sends to a client that asks for it. */
export const RESPONSE_INFORMATION = "m5resp/";
/** The matrix broker's Topic Alias Maximum towards clients' publishes. */
export const SERVER_TOPIC_ALIAS_MAXIMUM = 8;

/** ACL file text: anonymous clients may use every topic but the denied ones. */
export const ACL_TEXT = `topic readwrite #\ntopic deny ${DENIED_PREFIX}/#\n`;

/** Writes the ACL into `dir` and returns the broker flags every matrix deployment shares. */
export async function commonArgs(dir: string): Promise<string[]> {
  const acl = `${dir}/matrix.acl`;
  await Deno.writeTextFile(acl, ACL_TEXT);
  return [
    `--mqttwk.broker.auth.acl-file=${acl}`,
    `--mqttwk.broker.response-information=${RESPONSE_INFORMATION}`,
    `--mqttwk.broker.topic-alias-maximum=${SERVER_TOPIC_ALIAS_MAXIMUM}`,
    // The wills case kills connections on purpose; this keeps them from being rate-limited.
    "--mqttwk.broker.auth.max-connection-rate=0",
  ];
}
