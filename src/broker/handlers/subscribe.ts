/**
 * SUBSCRIBE: each filter checked (validity, features, authorization, the per-client limit) and
 * granted or refused (3.1.1: 0x80; 5.0: the reason, 3.9.3); the SUBACK, then the retained
 * messages of the granted filters (RETAIN=1) as their Retain Handling asks (never for shared
 * subscriptions). In a cluster the SUBACK waits until every node routes a new filter (or shared
 * group) here.
 */
import { ProtocolError } from "../../codec/errors.ts";
import type { SubackPacket, SubscribePacket, Subscription } from "../../codec/packets.ts";
import { ReasonCode, SUBACK_FAILURE } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { encodeReply } from "../replies.ts";
import type { SubscriptionRecord } from "../model.ts";
import { RetainedFeed } from "../retained_feed.ts";
import { isShared, parseShare } from "../shared_groups.ts";
import { subValue } from "../subscriptions.ts";
import { isValidFilter } from "../topic.ts";

export function handleSubscribe(core: Core, client: Client, p: SubscribePacket): void {
  const s = client.session!;
  const codes: number[] = [];
  const granted: SubscriptionRecord[] = [];
  let announcing: Promise<void>[] | null = null;
  // 5.0 says why a filter is refused; 3.1.1 has only 0x80 (a 5.0 client is told which feature
  // is off: 3.8.3 / 3.9.3).
  const v5 = client.version === 5;
  const unsupported = v5 ? unsupportedFeature(core, p) : 0;
  // 3.8.2.1.2: one identifier for every subscription this SUBSCRIBE creates or modifies.
  const subscriptionId = v5 ? p.properties?.subscriptionIdentifiers?.[0] ?? 0 : 0;
  if (v5) noLocalOnShared(p);
  let overLimit = 0;
  for (const sub of p.subscriptions) {
    const filter = sub.topic;
    let code: number = SUBACK_FAILURE;
    // A shared subscription matches and is authorized by its filter without the share name.
    const shared = isShared(filter);
    const share = shared ? parseShare(filter, core.limits) : null;
    const aclFilter = share?.filter ?? filter;
    if (unsupported !== 0) {
      code = unsupported;
    } else if (shared && !core.options.sharedSubscriptionAvailable) {
      if (v5) code = ReasonCode.SharedSubscriptionsNotSupported;
    } else if (shared ? share === null : !isValidFilter(filter, core.limits)) {
      // A share name that is empty or holds + or # is as invalid as a bad filter (4.8.2).
      core.log.info(`client ${s.clientId}: invalid topic filter ${JSON.stringify(filter)}`);
      if (v5) code = ReasonCode.TopicFilterInvalid;
    } else if (!core.options.wildcardSubscriptionAvailable && hasWildcard(aclFilter)) {
      core.log.info(`client ${s.clientId}: wildcard subscriptions are off (${filter})`);
      if (v5) code = ReasonCode.WildcardSubscriptionsNotSupported;
    } else if (!core.authorizer.canSubscribe(client.info, aclFilter)) {
      core.log.info(`client ${s.clientId} not authorized to subscribe to ${filter}`);
      if (v5) code = ReasonCode.NotAuthorized;
    } else if (s.persistent && core.persistence.failure !== null) {
      // A persistent subscription must be stored, and the store cannot commit now.
      core.log.info(`client ${s.clientId}: store unavailable, subscription to ${filter} refused`);
      if (v5) code = ReasonCode.QuotaExceeded;
    } else if (
      core.options.maxSubscriptionsPerClient > 0 && !s.subscriptions.has(filter) &&
      s.subscriptions.size >= core.options.maxSubscriptionsPerClient
    ) {
      overLimit++;
      if (v5) code = ReasonCode.QuotaExceeded;
    } else {
      const rec = record(core, sub, v5, subscriptionId);
      const existed = s.subscriptions.has(filter);
      s.setSubscription(rec);
      const checkEach = core.authorizer.checkEachDelivery?.(client.info, aclFilter) ?? false;
      const announced = core.subscriptions.add(filter, s.clientId, subValue(rec, checkEach));
      if (announced) {
        (announcing ??= []).push(announced.catch((err) => {
          // The route is re-announced when the cluster link recovers; the SUBACK still goes.
          core.log.warn(`announcing route ${filter} failed: ${err?.message ?? err}`);
        }));
      }
      core.persistence.addSubscription(s, rec);
      // MQTT-3.3.1-9 / -10 / -11: Retain Handling 0 sends the retained messages, 1 only for a
      // new subscription, 2 never; 4.8.2: never for a shared subscription.
      const rh = rec.retainHandling ?? 0;
      if (!shared && (rh === 0 || (rh === 1 && !existed))) granted.push(rec);
      core.events.subscribed?.(client.info, filter, rec.qos);
      code = rec.qos;
    }
    codes.push(code);
  }
  if (overLimit > 0) {
    // One line per SUBSCRIBE, however many filters it carried past the limit.
    core.log.info(
      `client ${s.clientId}: subscription limit ${core.options.maxSubscriptionsPerClient} ` +
        `reached (mqttwk.broker.max-subscriptions-per-client); ${overLimit} filter(s) refused`,
    );
  }
  core.stats.subscriptions = core.subscriptions.size;
  // Within the client's Maximum Packet Size, or the connection is closed (replies.ts).
  const suback = encodeReply(client, subackPacket(client, p.packetId, codes));
  if (suback === null) return;
  if (announcing) {
    // A message published anywhere right after the SUBACK must not be missed; later output
    // queues behind it.
    const commit = core.persistence.commitBarrier();
    if (commit) announcing.push(commit);
    client.sendAfter(Promise.all(announcing).then(() => {}), suback);
  } else client.send(suback, s.persistent); // a clean session stored nothing to wait for
  // MQTT-3.3.1-6 / -8: retained messages follow the SUBACK, RETAIN=1, at min(QoS), also when
  // an existing subscription is replaced. They are fed at the pace the client reads (see
  // retained_feed.ts), checked against the rules of whoever holds the session when sent.
  if (granted.length > 0 && core.retained.size > 0) {
    const feed = s.retainedFeed ??= new RetainedFeed((topic) => {
      const c = s.client;
      return c !== null && core.authorizer.canSubscribe(c.info, topic);
    });
    for (const g of granted) feed.add(core.retained, g.filter, g.qos, g.subscriptionId);
    core.delivery.pump(s);
  }
}

/** The subscription as kept and stored; 3.1.1 records carry no 5.0 options. */
function record(
  core: Core,
  sub: Subscription,
  v5: boolean,
  subscriptionId: number,
): SubscriptionRecord {
  // MQTT-3.2.2-10: any requested QoS is accepted, granted at most Maximum QoS.
  const qos = sub.qos > core.options.maxQos ? core.options.maxQos : sub.qos;
  const rec: SubscriptionRecord = { filter: sub.topic, qos };
  if (!v5) return rec;
  if (sub.noLocal) rec.noLocal = true;
  if (sub.retainAsPublished) rec.retainAsPublished = true;
  if (sub.retainHandling) rec.retainHandling = sub.retainHandling;
  if (subscriptionId !== 0) rec.subscriptionId = subscriptionId;
  return rec;
}

function hasWildcard(filter: string): boolean {
  return filter.includes("+") || filter.includes("#");
}

/**
 * The SUBACK; for 5.0 with a refused filter, a reason string if the client allows problem
 * information (MQTT-3.1.2-29); encodeReply drops it if it does not fit (MQTT-3.9.2-1).
 */
function subackPacket(client: Client, packetId: number, codes: number[]): SubackPacket {
  const suback: SubackPacket = { type: "suback", packetId, reasonCodes: codes };
  const v5 = client.v5;
  if (v5 === null || !v5.problemInformation) return suback;
  const refused = codes.filter((c) => c >= 0x80).length;
  if (refused === 0) return suback;
  suback.properties = { reasonString: `${refused} of ${codes.length} topic filter(s) refused` };
  return suback;
}

/**
 * MQTT-3.8.3-4: No Local on a shared subscription is a protocol error (5.0 only has it). The codec
 * already refuses it on `$share/`; this covers `$queue/`, which the codec does not know.
 */
function noLocalOnShared(p: SubscribePacket): void {
  for (const sub of p.subscriptions) {
    if (sub.noLocal && isShared(sub.topic)) {
      throw new ProtocolError(
        `No Local on the shared subscription ${JSON.stringify(sub.topic.slice(0, 100))}`,
        "MQTT-3.8.3-4",
        ReasonCode.ProtocolError,
      );
    }
  }
}

/** 5.0: a reason code refusing every filter when the SUBSCRIBE uses a feature that is off. */
function unsupportedFeature(core: Core, p: SubscribePacket): number {
  if (
    p.properties?.subscriptionIdentifiers !== undefined &&
    !core.options.subscriptionIdentifiersAvailable
  ) {
    return ReasonCode.SubscriptionIdentifiersNotSupported;
  }
  return 0;
}
