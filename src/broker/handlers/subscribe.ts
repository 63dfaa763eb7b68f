/**
 * SUBSCRIBE: each filter checked (validity, authorization, the per-client limit) and granted or
 * refused (0x80); the SUBACK, then the retained messages of the granted filters (RETAIN=1; not
 * for shared subscriptions). In a cluster the SUBACK waits until every node routes a new filter
 * (or shared group) here.
 */
import { encode } from "../../codec/encoder.ts";
import { ProtocolError } from "../../codec/errors.ts";
import type { QoS, SubscribePacket } from "../../codec/packets.ts";
import { ReasonCode, SUBACK_FAILURE } from "../../codec/reason_codes.ts";
import type { Client } from "../client.ts";
import type { Core } from "../core.ts";
import { RetainedFeed } from "../retained_feed.ts";
import { isShared, parseShare } from "../shared_groups.ts";
import { isValidFilter } from "../topic.ts";

export function handleSubscribe(core: Core, client: Client, p: SubscribePacket): void {
  const s = client.session!;
  const codes: number[] = [];
  const granted: { filter: string; qos: QoS }[] = [];
  let announcing: Promise<void>[] | null = null;
  // 5.0 says why a filter is refused; 3.1.1 has only 0x80 (a 5.0 client is told which feature
  // is off: 3.8.3 / 3.9.3).
  const v5 = client.version === 5;
  const unsupported = v5 ? unsupportedFeature(core, p) : 0;
  if (v5) noLocalOnShared(p);
  for (const sub of p.subscriptions) {
    const filter = sub.topic;
    let code: number = SUBACK_FAILURE;
    // A shared subscription matches and is authorized by its filter without the share name.
    const shared = isShared(filter);
    const share = shared ? parseShare(filter, core.limits) : null;
    if (unsupported !== 0) {
      code = unsupported;
    } else if (shared && !core.options.sharedSubscriptionAvailable) {
      if (v5) code = ReasonCode.SharedSubscriptionsNotSupported;
    } else if (shared ? share === null : !isValidFilter(filter, core.limits)) {
      // A share name that is empty or holds + or # is as invalid as a bad filter (4.8.2).
      core.log.info(`client ${s.clientId}: invalid topic filter ${JSON.stringify(filter)}`);
      if (v5) code = ReasonCode.TopicFilterInvalid;
    } else if (!core.authorizer.canSubscribe(client.info, share?.filter ?? filter)) {
      core.log.info(`client ${s.clientId} not authorized to subscribe to ${filter}`);
      if (v5) code = ReasonCode.NotAuthorized;
    } else if (
      core.options.maxSubscriptionsPerClient > 0 && !s.subscriptions.has(filter) &&
      s.subscriptions.size >= core.options.maxSubscriptionsPerClient
    ) {
      core.log.info(`client ${s.clientId}: subscription limit reached`);
      if (v5) code = ReasonCode.QuotaExceeded;
    } else {
      // MQTT-3.2.2-10: any requested QoS is accepted, granted at most Maximum QoS.
      const qos = sub.qos > core.options.maxQos ? core.options.maxQos : sub.qos;
      const rec = { filter, qos };
      s.setSubscription(rec);
      const announced = core.subscriptions.add(filter, s.clientId, qos);
      if (announced) {
        (announcing ??= []).push(announced.catch((err) => {
          // The route is re-announced when the cluster link recovers; the SUBACK still goes.
          core.log.warn(`announcing route ${filter} failed: ${err?.message ?? err}`);
        }));
      }
      core.persistence.addSubscription(s, rec);
      // 4.8.2: retained messages are not sent for a shared subscription.
      if (!shared) granted.push({ filter, qos });
      core.events.subscribed?.(client.info, filter, qos);
      code = qos;
    }
    codes.push(code);
  }
  core.stats.subscriptions = core.subscriptions.size;
  const suback = encode(
    { type: "suback", packetId: p.packetId, reasonCodes: codes },
    client.version,
  );
  if (announcing) {
    // A message published anywhere right after the SUBACK must not be missed; later output
    // queues behind it.
    const commit = core.persistence.commitBarrier();
    if (commit) announcing.push(commit);
    client.sendAfter(Promise.all(announcing).then(() => {}), suback);
  } else client.send(suback, true);
  // MQTT-3.3.1-6 / -8: retained messages follow the SUBACK, RETAIN=1, at min(QoS), also when
  // an existing subscription is replaced. They are fed at the pace the client reads (see
  // retained_feed.ts), checked against the rules of whoever holds the session when sent.
  if (granted.length > 0 && core.retained.size > 0) {
    const feed = s.retainedFeed ??= new RetainedFeed((topic) => {
      const c = s.client;
      return c !== null && core.authorizer.canSubscribe(c.info, topic);
    });
    for (const g of granted) feed.add(core.retained, g.filter, g.qos);
    core.delivery.pump(s);
  }
}

/** MQTT-3.8.3-4: No Local on a shared subscription is a protocol error (5.0 only has it). */
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
