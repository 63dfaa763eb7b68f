/**
 * Messages as the API shows and accepts them: payloads as UTF-8 text when they are, else base64;
 * MQTT 5 message properties as a JSON object (correlation data base64, user properties as
 * `[[name, value], ...]`, or an object of names to values on input).
 */
import type { Properties } from "../codec/packets.ts";
import type { StoredMessage } from "../broker/model.ts";
import { ApiError } from "./json.ts";

const strict = new TextDecoder("utf-8", { fatal: true });

/** A retained message as listed. */
export function messageView(m: StoredMessage): Record<string, unknown> {
  let payload: string;
  let encoding: "utf8" | "base64";
  try {
    payload = strict.decode(m.payload);
    encoding = "utf8";
  } catch {
    payload = toBase64(m.payload);
    encoding = "base64";
  }
  return {
    topic: m.topic,
    qos: m.qos,
    size: m.payload.byteLength,
    payload,
    encoding,
    properties: propertiesToJson(m.properties),
    createdAt: m.createdAt,
  };
}

/** The payload of a publish request. */
export function payloadFrom(payload: string, encoding: string | undefined): Uint8Array {
  if (encoding === undefined || encoding === "utf8") return new TextEncoder().encode(payload);
  if (encoding !== "base64") throw new ApiError(400, '"encoding" must be "utf8" or "base64"');
  try {
    return Uint8Array.from(atob(payload), (c) => c.charCodeAt(0));
  } catch {
    throw new ApiError(400, '"payload" is not valid base64');
  }
}

/** MQTT 5 message properties as JSON. */
export function propertiesToJson(p: Properties | undefined): Record<string, unknown> {
  if (!p) return {};
  const out: Record<string, unknown> = {};
  if (p.payloadFormatIndicator !== undefined) out.payloadFormatIndicator = p.payloadFormatIndicator;
  if (p.messageExpiryInterval !== undefined) out.messageExpiryInterval = p.messageExpiryInterval;
  if (p.contentType !== undefined) out.contentType = p.contentType;
  if (p.responseTopic !== undefined) out.responseTopic = p.responseTopic;
  if (p.correlationData !== undefined) out.correlationData = toBase64(p.correlationData);
  if (p.userProperties !== undefined) out.userProperties = p.userProperties;
  return out;
}

const KNOWN = new Set([
  "payloadFormatIndicator",
  "messageExpiryInterval",
  "contentType",
  "responseTopic",
  "correlationData",
  "userProperties",
]);

/** MQTT 5 message properties from a request's `properties` object; 400 names a bad one. */
export function propertiesFromJson(v: unknown): Properties | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new ApiError(400, '"properties" must be an object');
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) {
      throw new ApiError(400, `unknown property "${k}"; allowed: ${[...KNOWN].join(", ")}`);
    }
  }
  const p: Properties = {};
  const bad = (name: string, what: string) =>
    new ApiError(400, `"properties.${name}" must be ${what}`);
  if (o.payloadFormatIndicator !== undefined) {
    if (o.payloadFormatIndicator !== 0 && o.payloadFormatIndicator !== 1) {
      throw bad("payloadFormatIndicator", "0 or 1");
    }
    p.payloadFormatIndicator = o.payloadFormatIndicator;
  }
  if (o.messageExpiryInterval !== undefined) {
    const e = o.messageExpiryInterval;
    if (typeof e !== "number" || !Number.isInteger(e) || e < 0 || e > 0xffffffff) {
      throw bad("messageExpiryInterval", "an integer from 0 to 4294967295");
    }
    p.messageExpiryInterval = e;
  }
  for (const name of ["contentType", "responseTopic"] as const) {
    const s = o[name];
    if (s === undefined) continue;
    if (typeof s !== "string" || s.length > 65535) throw bad(name, "a string");
    p[name] = s;
  }
  if (p.responseTopic !== undefined && /[+#]/.test(p.responseTopic)) {
    throw bad("responseTopic", "a topic name without wildcards");
  }
  if (o.correlationData !== undefined) {
    if (typeof o.correlationData !== "string") throw bad("correlationData", "a base64 string");
    try {
      p.correlationData = Uint8Array.from(atob(o.correlationData), (c) => c.charCodeAt(0));
    } catch {
      throw bad("correlationData", "a base64 string");
    }
  }
  if (o.userProperties !== undefined) {
    const u = o.userProperties;
    const pairs: [string, string][] = [];
    if (Array.isArray(u)) {
      for (const pair of u) {
        if (
          !Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" ||
          typeof pair[1] !== "string"
        ) throw bad("userProperties", '[["name","value"], ...] or {"name":"value"}');
        pairs.push([pair[0], pair[1]]);
      }
    } else if (typeof u === "object" && u !== null) {
      for (const [k, val] of Object.entries(u)) {
        if (typeof val !== "string") throw bad("userProperties", "strings");
        pairs.push([k, val]);
      }
    } else throw bad("userProperties", '[["name","value"], ...] or {"name":"value"}');
    if (pairs.length) p.userProperties = pairs;
  }
  return Object.keys(p).length ? p : undefined;
}

function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) {
    s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
