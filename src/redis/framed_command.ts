/**
 * A Redis command whose bytes the caller writes around its last argument, in the caller's own
 * buffer: ioredis sends them as they are.
 *
 * ioredis builds every command with a Buffer argument anew: a string per argument, then one
 * buffer of the whole command that everything is copied into. For the batches a cluster node
 * forwards (XADD and PUBLISH of up to 60 KiB, thousands a second) that was a fresh large buffer
 * and a copy per command, 5% of a forwarding node's thread. The outbox leaves room in front of
 * each batch (outbox.ts, FRAMING_ROOM), so the command's head and the batch's length go there,
 * "\r\n" after it, and the batch becomes the command without a copy.
 *
 * Only the bytes are the caller's: name and arguments are still given to ioredis, which needs
 * them to route the command on a Redis Cluster (the key's slot), to tell blocking and
 * subscriber-mode commands apart, and for its debug log. Replies, errors, resending after a
 * reconnect and MOVED redirections work as for any command (they send the same bytes again).
 */
import { Buffer } from "node:buffer";
import { Command } from "ioredis";

const CRLF = [0x0d, 0x0a];

/** A command sent as the bytes it was given (see the file comment). */
export class FramedCommand extends Command {
  readonly #bytes: Buffer;

  /** `bytes`: the whole command in RESP, as commandHead and frameLastArgument make it. */
  constructor(name: string, args: (string | number | Buffer)[], bytes: Uint8Array) {
    // No reply encoding: the reply stays as Redis sent it (Buffer), as callBuffer would leave it.
    super(name, args, { replyEncoding: null });
    this.#bytes = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  override toWritable(): Buffer {
    return this.#bytes;
  }
}

/**
 * The RESP of the command `name` with `args` followed by one more argument, up to where that last
 * argument's length goes: "*<n>\r\n$<len>\r\n<name>\r\n" and each of `args` as a bulk string.
 */
export function commandHead(name: string, args: readonly (string | number)[]): Uint8Array {
  let s = `*${args.length + 2}\r\n`;
  for (const a of [name, ...args]) s += `$${Buffer.byteLength(String(a))}\r\n${a}\r\n`;
  return Buffer.from(s);
}

/**
 * Frames `buf[start, end)` as the last argument of the command `head` begins: writes `head` and
 * "$<length>\r\n" into the `room` bytes before `start` and "\r\n" into the two bytes after `end`,
 * and returns the command (a view of `buf`). Null, and nothing written, when the room is too small.
 */
export function frameLastArgument(
  head: Uint8Array,
  buf: Uint8Array,
  start: number,
  end: number,
  room: number,
): Uint8Array | null {
  const digits = String(end - start);
  const prefix = head.byteLength + 1 + digits.length + 2;
  if (prefix > room || start < prefix || end + 2 > buf.byteLength) return null;
  let p = start - prefix;
  const from = p;
  buf.set(head, p);
  p += head.byteLength;
  buf[p++] = 0x24; // "$"
  for (let i = 0; i < digits.length; i++) buf[p++] = digits.charCodeAt(i);
  buf[p++] = CRLF[0];
  buf[p] = CRLF[1];
  buf[end] = CRLF[0];
  buf[end + 1] = CRLF[1];
  return buf.subarray(from, end + 2);
}
