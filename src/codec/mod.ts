/** The MQTT codec: packet model, errors, reason codes, decoder and encoder. */
export * from "./packets.ts";
export * from "./errors.ts";
export * from "./reason_codes.ts";
export { Decoder, type DecoderOptions, MAX_PACKET_SIZE } from "./decoder.ts";
export { encode, encodedLengthOfString, encodePublish } from "./encoder.ts";
