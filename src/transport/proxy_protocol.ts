/**
 * PROXY protocol v1 (text) and v2 (binary) header parsing, as sent by HAProxy, nginx
 * (`proxy_protocol on`), AWS NLB and others in front of the broker.
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 *
 * The parser is fed the connection's first bytes in whatever chunks arrive and says when the
 * header is complete; the bytes after it belong to MQTT (or TLS) and are handed back untouched.
 */

/** The v1 spec caps the line at 107 bytes, CRLF included. */
const V1_MAX = 107;
/**
 * v2 allows 64 KiB of address data and TLVs; nothing we use needs more than the addresses plus
 * a few TLVs, and a bound keeps a hostile peer from making us buffer much before MQTT starts.
 */
export const V2_MAX = 16 + 2048;

const V2_SIG = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);
const V1_PREFIX = new TextEncoder().encode("PROXY ");

export class ProxyProtocolError extends Error {
  override name = "ProxyProtocolError";
}

export interface ProxyHeader {
  version: 1 | 2;
  /**
   * The original client as "ip:port"; undefined for v1 UNKNOWN, v2 LOCAL (health checks by the
   * proxy itself) and non-IP families, where the connection's own peer address applies.
   */
  source?: string;
  destination?: string;
}

export type ParseResult =
  | { done: false }
  | { done: true; header: ProxyHeader; rest: Uint8Array };

/** Resumable: push chunks until `done`; throws ProxyProtocolError as soon as the input is wrong. */
export class ProxyHeaderParser {
  #buf = new Uint8Array(0);

  /** push(), for callers that close the connection on bad input: the reason instead of a throw. */
  feed(chunk: Uint8Array): ParseResult | string {
    try {
      return this.push(chunk);
    } catch (err) {
      return err instanceof ProxyProtocolError ? err.message : String(err);
    }
  }

  push(chunk: Uint8Array): ParseResult {
    const buf = new Uint8Array(this.#buf.length + chunk.length);
    buf.set(this.#buf);
    buf.set(chunk, this.#buf.length);
    this.#buf = buf;
    // Decide on the signature as soon as its first bytes are in, so a client speaking MQTT
    // directly to a PROXY-protocol port is refused at once rather than after the timeout.
    const v1 = startsWith(buf, V1_PREFIX);
    const v2 = startsWith(buf, V2_SIG);
    if (!v1 && !v2) {
      throw new ProxyProtocolError(
        `missing PROXY protocol header (first bytes ${hex(buf.subarray(0, 8))})`,
      );
    }
    if (v1 && buf.length >= V1_PREFIX.length) return this.#v1(buf);
    if (v2 && buf.length >= 16) return this.#v2(buf);
    return { done: false };
  }

  #v1(buf: Uint8Array): ParseResult {
    const end = buf.indexOf(0x0a);
    if (end === -1) {
      if (buf.length >= V1_MAX) {
        throw new ProxyProtocolError("PROXY v1 header longer than 107 bytes");
      }
      return { done: false };
    }
    if (end + 1 > V1_MAX) throw new ProxyProtocolError("PROXY v1 header longer than 107 bytes");
    if (buf[end - 1] !== 0x0d) throw new ProxyProtocolError("PROXY v1 header not ended by CRLF");
    const line = new TextDecoder().decode(buf.subarray(0, end - 1));
    const rest = buf.subarray(end + 1);
    const parts = line.split(" ");
    if (parts[1] === "UNKNOWN") return { done: true, header: { version: 1 }, rest };
    if (parts.length !== 6 || (parts[1] !== "TCP4" && parts[1] !== "TCP6")) {
      throw new ProxyProtocolError(`malformed PROXY v1 header ${JSON.stringify(line)}`);
    }
    const [, fam, src, dst, sport, dport] = parts;
    const validIp = fam === "TCP4" ? isIPv4(src) && isIPv4(dst) : isIPv6(src) && isIPv6(dst);
    if (!validIp || !isPort(sport) || !isPort(dport)) {
      throw new ProxyProtocolError(`malformed PROXY v1 header ${JSON.stringify(line)}`);
    }
    return {
      done: true,
      header: {
        version: 1,
        source: joinHostPort(src, sport),
        destination: joinHostPort(dst, dport),
      },
      rest,
    };
  }

  #v2(buf: Uint8Array): ParseResult {
    const verCmd = buf[12];
    if (verCmd >> 4 !== 2) {
      throw new ProxyProtocolError(`unsupported PROXY v2 version ${verCmd >> 4}`);
    }
    const cmd = verCmd & 0x0f;
    if (cmd > 1) throw new ProxyProtocolError(`unsupported PROXY v2 command ${cmd}`);
    const famProto = buf[13];
    const len = (buf[14] << 8) | buf[15];
    if (16 + len > V2_MAX) {
      throw new ProxyProtocolError(`PROXY v2 header of ${16 + len} bytes exceeds ${V2_MAX}`);
    }
    if (buf.length < 16 + len) return { done: false };
    const rest = buf.subarray(16 + len);
    const body = buf.subarray(16, 16 + len);
    // LOCAL: the proxy's own connection (health check); the socket's addresses are the real ones.
    if (cmd === 0) return { done: true, header: { version: 2 }, rest };
    const family = famProto >> 4;
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    if (family === 1) {
      if (len < 12) throw new ProxyProtocolError("PROXY v2 IPv4 address block too short");
      const ip = (o: number) => [...body.subarray(o, o + 4)].join(".");
      return {
        done: true,
        header: {
          version: 2,
          source: joinHostPort(ip(0), String(view.getUint16(8))),
          destination: joinHostPort(ip(4), String(view.getUint16(10))),
        },
        rest,
      };
    }
    if (family === 2) {
      if (len < 36) throw new ProxyProtocolError("PROXY v2 IPv6 address block too short");
      const ip = (o: number) => formatIPv6(body.subarray(o, o + 16));
      return {
        done: true,
        header: {
          version: 2,
          source: joinHostPort(ip(0), String(view.getUint16(32))),
          destination: joinHostPort(ip(16), String(view.getUint16(34))),
        },
        rest,
      };
    }
    // AF_UNSPEC or AF_UNIX: no IP to report, keep the socket's peer address.
    return { done: true, header: { version: 2 }, rest };
  }
}

function startsWith(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

function isPort(s: string): boolean {
  if (!/^\d{1,5}$/.test(s)) return false;
  const n = Number(s);
  return n <= 65535;
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isIPv6(s: string): boolean {
  return s.includes(":") && /^[0-9a-fA-F:.]+$/.test(s) && s.length <= 45;
}

function formatIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // IPv4-mapped addresses read better as the IPv4 address the client really has.
  if (groups.slice(0, 5).every((g) => g === "0") && groups[5] === "ffff") {
    return [...b.subarray(12)].join(".");
  }
  return compressIPv6(groups);
}

function compressIPv6(groups: string[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestStart === -1) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLen).join(":")}`;
}

/**
 * "ip:port" without brackets for IPv6, the one form every listener uses, so per-address limits
 * see the same key whichever listener a client came through.
 */
export function joinHostPort(host: string, port: string | number): string {
  // One flat string: `${host}:${port}` would be a rope of three strings, ~95 bytes against ~36
  // for each connection's address, kept as long as the connection.
  return [host, port].join(":");
}
