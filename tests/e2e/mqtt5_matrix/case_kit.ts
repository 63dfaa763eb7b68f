/** Shared pieces of the MQTT 5.0 matrix cases: the Case shape and the properties every case sends. */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { IPublishPacket } from "mqtt";
import type { Deployment } from "./deployment.ts";

/** One feature check, run against each deployment. */
export interface Case {
  name: string;
  /** True to skip the case (a third-party client missing outside CI). */
  ignore?: boolean;
  run(d: Deployment): Promise<void>;
}

/** Every PUBLISH property a client may set, with a user property name repeated. */
export function allProperties(n: number) {
  return {
    payloadFormatIndicator: true,
    messageExpiryInterval: 600,
    contentType: "application/json; charset=utf-8",
    responseTopic: `reply/${n}`,
    correlationData: Buffer.from([0xc0, 0xff, 0x00, 0xee, n]),
    userProperties: { trace: [`t${n}`, "again", `t${n}`], hop: "one" },
  };
}

/** Checks that `p` carries allProperties(n) unchanged, the expiry counted down (MQTT-3.3.2-6). */
export function assertAllProperties(p: IPublishPacket, n: number, what: string) {
  const want = allProperties(n);
  const got = p.properties ?? {};
  assert.equal(got.payloadFormatIndicator, true, `${what}: payload format`);
  assert.equal(got.contentType, want.contentType, `${what}: content type`);
  assert.equal(got.responseTopic, want.responseTopic, `${what}: response topic`);
  assert.deepEqual(Buffer.from(got.correlationData!), want.correlationData, `${what}: corr. data`);
  assert.deepEqual({ ...got.userProperties }, want.userProperties, `${what}: user properties`);
  const left = got.messageExpiryInterval!;
  assert.ok(left >= 1 && left <= 600, `${what}: remaining expiry ${left}`);
}

/** mqtt.js options of a persistent 5.0 session (Clean Start 0). */
export const persistent = (clientId: string, expiry = 300) => ({
  clientId,
  clean: false,
  properties: { sessionExpiryInterval: expiry },
});
