/**
 * Makes a verified client certificate's CN the MQTT username (like Mosquitto's
 * use_identity_as_username), by replacing the username of the connection's CONNECT packet before
 * the broker decodes it. Doing it in the byte stream keeps the core and the authenticators
 * unaware of TLS: they see the CN wherever they look at the username.
 */
import { Decoder } from "../codec/decoder.ts";
import { encode } from "../codec/encoder.ts";
import type { Packet, ProtocolVersion } from "../codec/packets.ts";

/** Returns a stream equal to `readable` except that a leading CONNECT carries `username`. */
export function withConnectUsername(
  readable: ReadableStream<Uint8Array>,
  username: string,
  maxPacketSize: number,
): ReadableStream<Uint8Array> {
  const reader = readable.getReader();
  let head: Uint8Array | undefined = new Uint8Array(0);
  return new ReadableStream<Uint8Array>({
    async pull(ctrl) {
      try {
        while (head !== undefined) {
          const { value, done } = await reader.read();
          if (done) {
            if (head.length > 0) ctrl.enqueue(head);
            head = undefined;
            ctrl.close();
            return;
          }
          const joined = new Uint8Array(head.length + value.length);
          joined.set(head);
          joined.set(value, head.length);
          const size = packetSize(joined);
          if (size === undefined || (size > 0 && size <= maxPacketSize && joined.length < size)) {
            head = joined;
            continue;
          }
          head = undefined;
          // Oversized or malformed: pass it on unchanged and let the broker refuse it.
          if (size < 0 || size > maxPacketSize) {
            ctrl.enqueue(joined);
            return;
          }
          ctrl.enqueue(rewrite(joined.subarray(0, size), username));
          if (joined.length > size) ctrl.enqueue(joined.subarray(size));
          return;
        }
        const { value, done } = await reader.read();
        if (done) ctrl.close();
        else ctrl.enqueue(value);
      } catch (err) {
        ctrl.error(err);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** Whole packet length from its fixed header; undefined = need more bytes; -1 = malformed. */
function packetSize(b: Uint8Array): number | undefined {
  let len = 0;
  let mult = 1;
  for (let i = 1; i <= 4; i++) {
    if (b.length <= i) return undefined;
    len += (b[i] & 0x7f) * mult;
    if ((b[i] & 0x80) === 0) return 1 + i + len;
    mult *= 128;
  }
  return -1;
}

function rewrite(packet: Uint8Array, username: string): Uint8Array {
  let connect: Packet | undefined;
  try {
    new Decoder().push(packet, (p) => connect ??= p);
  } catch {
    return packet;
  }
  if (connect?.type !== "connect") return packet;
  const level = connect.protocolVersion;
  if (level !== 3 && level !== 4 && level !== 5) return packet;
  return encode({ ...connect, username }, level as ProtocolVersion);
}
