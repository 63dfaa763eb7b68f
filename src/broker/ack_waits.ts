/**
 * Acks of client PUBLISHes that wait for a promise (handlers/publish.ts): the batch that queues
 * their messages on another node (one per node per turn, outbox.ts), a sink's hand-off. The
 * PUBLISHes that wait for the same promise, as a turn's do, share one reaction to it: not a
 * promise, a reaction and three closures per PUBLISH, which were most of what a node forwarding
 * QoS 1 messages to another allocated per message. A PUBLISH whose promise rejects stays
 * unacknowledged, and its publisher resends it.
 */
import type { Client } from "./client.ts";
import type { Core } from "./core.ts";
import { ackedId, ackedQos, packAck, type StoredMessage } from "./model.ts";

/**
 * Acks waiting for one promise, in the order their PUBLISHes arrived: `n` entries of parallel
 * arrays, kept at their size when the group is reused (growing them again for every batch cost
 * more than the rest of this file).
 */
class Waiting {
  core: Core | null = null;
  n = 0;
  readonly clients: (Client | undefined)[] = [];
  /** Each ack, packed (packAck). */
  readonly acks: number[] = [];
  /** The message whose held deliveries the ack also waits for (durable QoS 1), else undefined. */
  readonly messages: (StoredMessage | undefined)[] = [];
  /** For the log line when the promise rejects. */
  readonly topics: (string | undefined)[] = [];

  /** Lets go of what the entries refer to, for reuse. */
  clear(): void {
    for (let i = 0; i < this.n; i++) {
      this.clients[i] = undefined;
      this.messages[i] = undefined;
      this.topics[i] = undefined;
    }
    this.n = 0;
    this.core = null;
  }
}

/** Groups whose promise settled, for the next promises (a few are in use at a time). */
const spare: Waiting[] = [];
const MAX_SPARE = 8;

/** The promise the last PUBLISH waited for, and its group: a turn's PUBLISHes share them. */
let lastPromise: Promise<unknown> | null = null;
let lastGroup: Waiting | null = null;

/**
 * Sends the PUBACK (QoS 1) or PUBREC (QoS 2) with reason `code` of `client`'s PUBLISH `pid` once
 * `promise` resolves, and, if `msg` is given, its held deliveries have settled; if the promise
 * rejects, the PUBLISH stays unacknowledged (notAcknowledged).
 */
export function ackWhenDone(
  core: Core,
  promise: Promise<unknown>,
  client: Client,
  qos: number,
  pid: number,
  code: number,
  msg: StoredMessage | undefined,
  topic: string,
): void {
  let g = lastGroup;
  if (promise !== lastPromise || g === null || g.core !== core) {
    const group = g = spare.pop() ?? new Waiting();
    group.core = core;
    lastPromise = promise;
    lastGroup = group;
    promise.then(() => settled(group), (err) => failed(group, err));
  }
  const i = g.n++;
  g.clients[i] = client;
  g.acks[i] = packAck(qos, pid, code);
  g.messages[i] = msg;
  g.topics[i] = topic;
}

/** The group is done with: no longer joined, and kept for reuse. */
function retire(g: Waiting): void {
  if (lastGroup === g) {
    lastGroup = null;
    lastPromise = null;
  }
  g.clear();
  if (spare.length < MAX_SPARE) spare.push(g);
}

function settled(g: Waiting): void {
  const volatile = g.core!.volatile;
  for (let i = 0; i < g.n; i++) {
    volatile.ackWhenSettled(g.messages[i], g.clients[i]!, g.acks[i]);
  }
  retire(g);
}

function failed(g: Waiting, err: unknown): void {
  for (let i = 0; i < g.n; i++) {
    const a = g.acks[i];
    notAcknowledged(g.core!, g.clients[i]!, g.topics[i]!, ackedQos(a), ackedId(a), err);
  }
  retire(g);
}

/** Unacknowledged publishes logged so far: one line per burst, not per message. */
let unackedWarned = 0;

/** What waited for a PUBLISH's ack refused it: it stays unacknowledged (the client resends). */
export function notAcknowledged(
  core: Core,
  client: Client,
  topic: string,
  qos: number,
  pid: number,
  err: unknown,
): void {
  // A full bridge buffer refuses thousands.
  if (unackedWarned++ % 1000 === 0) {
    core.log.warn(
      `message ${topic} from ${client.info.clientId} not acknowledged: ` +
        `${(err as Error)?.message ?? err} (${unackedWarned} so far)`,
    );
  }
  // A failed store commit is retried with the id in it: the id stays, so a resend is
  // recognised. A refusal from elsewhere (a full bridge buffer) frees the id for the resend.
  if (qos === 2 && core.persistence.failure === null) client.session!.deleteInboundQos2(pid);
}
