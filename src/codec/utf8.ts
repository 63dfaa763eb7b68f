/**
 * UTF-8 for MQTT strings: exact byte lengths, writing without intermediate buffers, and strict
 * reading (well-formed, no U+0000, BOM kept) as spec 1.5.3 / 1.5.4 requires.
 */

const textEncoder = new TextEncoder();
// ignoreBOM keeps a leading U+FEFF: MQTT-1.5.3-3 forbids a receiver to strip it.
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Below this many UTF-16 units a JS loop beats crossing into the native encoder/decoder. */
const SHORT_STRING = 48;

/**
 * Bytes `s` occupies in UTF-8. A lone surrogate counts 3 bytes, the size of the U+FFFD that
 * `writeUtf8` (like TextEncoder) puts in its place, so sizing and writing always agree.
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let bytes = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      bytes += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 2; // 2 units → 4 bytes
        i++;
      } else {
        bytes += 2;
      }
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/** Writes `s` at `pos` (the caller sized `buf` with utf8Length); returns the end position. */
export function writeUtf8(buf: Uint8Array, pos: number, s: string): number {
  const n = s.length;
  if (n > SHORT_STRING) {
    return pos + textEncoder.encodeInto(s, buf.subarray(pos)).written;
  }
  for (let i = 0; i < n; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      buf[pos++] = c;
    } else if (c < 0x800) {
      buf[pos++] = 0xc0 | (c >> 6);
      buf[pos++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        buf[pos++] = 0xf0 | (c >> 18);
        buf[pos++] = 0x80 | ((c >> 12) & 0x3f);
        buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
        buf[pos++] = 0x80 | (c & 0x3f);
      } else {
        buf[pos++] = 0xef;
        buf[pos++] = 0xbf;
        buf[pos++] = 0xbd;
      }
    } else {
      buf[pos++] = 0xe0 | (c >> 12);
      buf[pos++] = 0x80 | ((c >> 6) & 0x3f);
      buf[pos++] = 0x80 | (c & 0x3f);
    }
  }
  return pos;
}

/** Why a byte range is not an MQTT string; see readUtf8. */
export const UTF8_OK = 0;
export const UTF8_ILL_FORMED = 1;
export const UTF8_NUL = 2;

/**
 * Recently decoded short ASCII strings, by a hash of their bytes: topics repeat (a publisher
 * sends to the same few over and over), and building one char by char allocated a string per
 * character, ~175 bytes per 9-character topic. A hit returns the string already made (equal
 * content, so nothing can tell) and costs one compare; a miss overwrites the slot. The key bytes
 * live in one fixed buffer: nothing is allocated for the cache after start-up.
 */
const CACHE_SLOTS = 512;
const CACHED_MAX = 64;
const cacheBytes = new Uint8Array(CACHE_SLOTS * CACHED_MAX);
const cacheLengths = new Int32Array(CACHE_SLOTS).fill(-1);
const cacheStrings: string[] = new Array(CACHE_SLOTS).fill("");

/**
 * Decodes `buf[start, end)`; returns a number (UTF8_ILL_FORMED / UTF8_NUL) instead of throwing
 * so the caller can pick the statement id of its protocol level.
 */
export function readUtf8(buf: Uint8Array, start: number, end: number): string | number {
  const n = end - start;
  // Only strings the cache can hold are hashed.
  const cacheable = n <= CACHED_MAX;
  let ascii = true;
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    const b = buf[i];
    // In UTF-8 a zero byte only ever encodes U+0000 (the overlong C0 80 is ill-formed anyway).
    if (b === 0) return UTF8_NUL;
    if (b >= 0x80) ascii = false;
    if (cacheable) h = Math.imul(h ^ b, 0x01000193);
  }
  if (ascii && cacheable) {
    const slot = (h ^ (h >>> 15)) & (CACHE_SLOTS - 1);
    const at = slot * CACHED_MAX;
    if (cacheLengths[slot] === n) {
      let i = 0;
      while (i < n && cacheBytes[at + i] === buf[start + i]) i++;
      if (i === n) return cacheStrings[slot];
    }
    let s = "";
    if (n <= SHORT_STRING) { for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]); }
    else s = textDecoder.decode(buf.subarray(start, end));
    for (let i = 0; i < n; i++) cacheBytes[at + i] = buf[start + i];
    cacheLengths[slot] = n;
    cacheStrings[slot] = s;
    return s;
  }
  try {
    return textDecoder.decode(buf.subarray(start, end));
  } catch {
    // The fatal decoder also rejects encoded surrogates (ED A0..BF ..), as MQTT-1.5.3-1 wants.
    return UTF8_ILL_FORMED;
  }
}

/**
 * Whether `b` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF), as a payload with Payload Format Indicator 1 must be (3.3.2.3.2). Unlike an MQTT
 * string, a payload may contain U+0000. Checked in place: no string is built from the payload.
 */
export function isWellFormedUtf8(b: Uint8Array): boolean {
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      if (c === 0xe0) lo = 0xa0; // overlong
      else if (c === 0xed) hi = 0x9f; // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      if (c === 0xf0) lo = 0x90; // overlong
      else if (c === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return false;
    if (i + need >= n) return false; // truncated sequence
    const second = b[i + 1];
    if (second < lo || second > hi) return false;
    for (let k = 2; k <= need; k++) {
      const x = b[i + k];
      if (x < 0x80 || x > 0xbf) return false;
    }
    i += need + 1;
  }
  return true;
}
