import { ReasonCode } from "./reason_codes.ts";

/**
 * The one error type for protocol violations, raised by the decoder and by the broker core.
 *
 * `reasonCode` is the MQTT 5.0 reason code that a 5.0 peer would be told (0x81 Malformed
 * Packet, 0x82 Protocol Error, 0x95 Packet Too Large, ...); a 3.1.1 peer is simply
 * disconnected. `statement` is the normative statement id from the spec, e.g. "MQTT-3.3.2-2",
 * so a log line points at the rule that was broken.
 */
export class ProtocolError extends Error {
  readonly reasonCode: number;
  readonly statement: string;

  constructor(message: string, statement: string, reasonCode: number = ReasonCode.MalformedPacket) {
    super(`${message} [${statement}]`);
    this.name = "ProtocolError";
    this.reasonCode = reasonCode;
    this.statement = statement;
  }
}
