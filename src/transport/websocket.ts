/**
 * MQTT over WebSocket: what the listeners agree on (subprotocols, frame limit) and who the
 * client is behind a trusted HTTP proxy (X-Forwarded-For). Binary frames carry an arbitrary
 * slicing of the MQTT byte stream (a packet may span frames, a frame may hold several packets);
 * text frames are a protocol error. The protocol itself is in ws_handshake.ts, ws_frames.ts and
 * ws_connection.ts.
 */

/** Subprotocols MQTT clients offer (OASIS MQTT 3.1.1 section 6), in order of preference. */
export const MQTT_SUBPROTOCOLS = ["mqtt", "mqttv3.1", "mqttv3.1.1"];

/**
 * Largest payload one client frame may announce: a frame may hold more than one packet, so
 * twice the largest packet, at least 64 KiB.
 */
export function maxFrameSize(maxPacketSize: number): number {
  return Math.max(2 * maxPacketSize, 64 * 1024);
}

// --- X-Forwarded-For -----------------------------------------------------------------------------

/** Whether an IP belongs to a trusted proxy. */
export type Trusted = (ip: string) => boolean;

/** Parses trusted proxy specs: IPs, or IPv4 CIDRs like "10.0.0.0/8". */
export function parseTrusted(spec: string): Trusted {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(spec);
  if (m) {
    const bits = Number(m[2]);
    const base = ipv4ToInt(m[1]);
    if (base === undefined || bits > 32) throw new Error(`invalid trusted proxy ${spec}`);
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
    return (ip) => {
      const n = ipv4ToInt(normalizeIp(ip));
      return n !== undefined && ((n & mask) >>> 0) === ((base & mask) >>> 0);
    };
  }
  const want = normalizeIp(spec);
  return (ip) => normalizeIp(ip) === want;
}

function ipv4ToInt(ip: string): number | undefined {
  const p = ip.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

function normalizeIp(ip: string): string {
  const s = ip.trim().replace(/^\[|\]$/g, "").toLowerCase();
  return s.startsWith("::ffff:") && s.includes(".") ? s.slice(7) : s;
}

/**
 * The client as seen by the nearest trusted proxy: X-Forwarded-For read from the right, skipping
 * the trusted proxies themselves (anything further left could be forged by the client), else
 * X-Real-IP. Only consulted when the TCP peer is a trusted proxy.
 */
export function forwardedClient(
  headers: ReadonlyMap<string, string>,
  peerIp: string,
  trusted: readonly Trusted[],
): string | undefined {
  const isTrusted = (ip: string) => trusted.some((t) => t(ip));
  if (!isTrusted(peerIp)) return undefined;
  const xff = headers.get("x-forwarded-for");
  if (xff) {
    const hops = xff.split(",").map((s) => normalizeIp(s)).filter(Boolean);
    for (let i = hops.length - 1; i >= 0; i--) {
      if (!isTrusted(hops[i]) || i === 0) return validIp(hops[i]);
    }
  }
  const real = headers.get("x-real-ip");
  return real ? validIp(normalizeIp(real)) : undefined;
}

function validIp(s: string): string | undefined {
  if (ipv4ToInt(s) !== undefined) return s;
  return /^[0-9a-f:.]+$/.test(s) && s.includes(":") ? s : undefined;
}

/** The host of "host:port" as joinHostPort wrote it. */
export function hostOnly(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(0, i) : address;
}

/** The port of "host:port". */
export function portOnly(address: string): string {
  const i = address.lastIndexOf(":");
  return i > 0 ? address.slice(i + 1) : "0";
}
