/**
 * A small MQTT 3.1.1 client over the browser's WebSocket, for the dashboard's MQTT panel.
 * The dashboard cannot ship mqtt.js (a test-only dependency, not in the image), and the panel
 * needs only CONNECT, SUBSCRIBE/UNSUBSCRIBE, PUBLISH at QoS 0/1/2 both ways, PINGREQ and
 * DISCONNECT. No I/O beyond the WebSocket it is given a URL for; runs in browsers and Deno.
 */

/** Packet types (high nibble of the fixed header). */
export const TYPE = Object.freeze({
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
});

/** Largest packet the panel accepts; a bigger one closes the connection (bounded buffer). */
export const MAX_PACKET = 1024 * 1024;
/** Most publishes waiting for their acknowledgement at once; more are refused. */
export const MAX_INFLIGHT = 100;

/** CONNACK return codes of 3.1.1, for readable errors. */
const CONNACK_REASONS = [
  "accepted",
  "unacceptable protocol version",
  "identifier rejected",
  "server unavailable",
  "bad user name or password",
  "not authorized",
];

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: false });

/**
 * The remaining-length varint (1–4 bytes, 7 bits each, low first).
 * @param {number} n 0..268435455
 * @returns {number[]}
 */
export function encodeLength(n) {
  if (!Number.isInteger(n) || n < 0 || n > 268_435_455) {
    throw new RangeError(`remaining length out of range: ${n}`);
  }
  const out = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

/**
 * Reads a remaining-length varint at `at`.
 * @param {Uint8Array} buf
 * @param {number} at
 * @returns {{value:number, size:number} | null} null when more bytes are needed
 */
export function decodeLength(buf, at) {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    if (at + i >= buf.length) return null;
    const b = buf[at + i];
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return { value, size: i + 1 };
    mult *= 128;
  }
  throw new RangeError("malformed remaining length");
}

/** A UTF-8 string with its two-byte length prefix. */
function str(s) {
  const b = utf8.encode(s);
  if (b.length > 65535) throw new RangeError("string longer than 65535 bytes");
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** Builds a packet from its first byte and variable header + payload bytes. */
function packet(first, body) {
  const out = new Uint8Array(1 + encodeLength(body.length).length + body.length);
  const len = encodeLength(body.length);
  out[0] = first;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

/**
 * CONNECT for protocol level 4 (3.1.1).
 * @param {{clientId:string, username?:string, password?:string, keepalive?:number,
 *   clean?:boolean}} o
 */
export function encodeConnect(o) {
  const keepalive = o.keepalive ?? 30;
  let flags = o.clean === false ? 0 : 0x02;
  const payload = [...str(o.clientId)];
  if (o.username) {
    flags |= 0x80;
    payload.push(...str(o.username));
    if (o.password) {
      flags |= 0x40;
      payload.push(...str(o.password));
    }
  }
  const body = [...str("MQTT"), 4, flags, keepalive >> 8, keepalive & 0xff, ...payload];
  return packet(TYPE.CONNECT << 4, body);
}

/**
 * PUBLISH; `id` only for QoS 1 and 2.
 * @param {{topic:string, payload:Uint8Array, qos:number, retain?:boolean, dup?:boolean,
 *   id?:number}} p
 */
export function encodePublish(p) {
  const first = (TYPE.PUBLISH << 4) | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0);
  const body = [...str(p.topic)];
  if (p.qos > 0) body.push(p.id >> 8, p.id & 0xff);
  const out = new Uint8Array(body.length + p.payload.length);
  out.set(body);
  out.set(p.payload, body.length);
  return packet(first, out);
}

/** SUBSCRIBE for one filter. */
export function encodeSubscribe(id, filter, qos) {
  return packet((TYPE.SUBSCRIBE << 4) | 0x02, [id >> 8, id & 0xff, ...str(filter), qos]);
}

/** UNSUBSCRIBE for one filter. */
export function encodeUnsubscribe(id, filter) {
  return packet((TYPE.UNSUBSCRIBE << 4) | 0x02, [id >> 8, id & 0xff, ...str(filter)]);
}

/** PUBACK, PUBREC, PUBREL (flags 0x02) or PUBCOMP for packet id `id`. */
export function encodeAck(type, id) {
  return packet((type << 4) | (type === TYPE.PUBREL ? 0x02 : 0), [id >> 8, id & 0xff]);
}

/**
 * Splits a byte stream into packets; WebSocket messages need not line up with packets.
 * Holds at most one partial packet of up to MAX_PACKET bytes.
 */
export class PacketReader {
  #buf = new Uint8Array(0);

  /**
   * Appends bytes and returns every complete packet.
   * @param {Uint8Array} bytes
   * @returns {{type:number, flags:number, body:Uint8Array}[]}
   */
  push(bytes) {
    const joined = new Uint8Array(this.#buf.length + bytes.length);
    joined.set(this.#buf);
    joined.set(bytes, this.#buf.length);
    const out = [];
    let at = 0;
    while (at < joined.length) {
      const len = decodeLength(joined, at + 1);
      if (len === null) break;
      if (len.value > MAX_PACKET) throw new RangeError(`packet of ${len.value} bytes is too big`);
      const start = at + 1 + len.size;
      if (start + len.value > joined.length) break;
      out.push({
        type: joined[at] >> 4,
        flags: joined[at] & 0x0f,
        body: joined.subarray(start, start + len.value),
      });
      at = start + len.value;
    }
    this.#buf = joined.slice(at);
    return out;
  }
}

/**
 * Reads a PUBLISH body.
 * @returns {{topic:string, payload:Uint8Array, qos:number, retain:boolean, dup:boolean,
 *   id:number}}
 */
export function decodePublish(flags, body) {
  const qos = (flags >> 1) & 3;
  if (qos === 3 || body.length < 2) throw new RangeError("malformed PUBLISH");
  const tlen = (body[0] << 8) | body[1];
  let at = 2 + tlen;
  if (at > body.length) throw new RangeError("malformed PUBLISH topic");
  const topic = fromUtf8.decode(body.subarray(2, at));
  let id = 0;
  if (qos > 0) {
    if (at + 2 > body.length) throw new RangeError("malformed PUBLISH packet id");
    id = (body[at] << 8) | body[at + 1];
    at += 2;
  }
  return {
    topic,
    payload: body.slice(at),
    qos,
    retain: (flags & 1) === 1,
    dup: (flags & 8) === 8,
    id,
  };
}

/** A packet id's two bytes. */
function idOf(body) {
  return (body[0] << 8) | body[1];
}

/**
 * One MQTT 3.1.1 connection over a WebSocket. Events (see on()): "message" (a received
 * publish), "close" ({reason}), "error" (Error).
 */
export class MqttClient {
  /** @type {WebSocket | null} */
  #ws = null;
  #reader = new PacketReader();
  #nextId = 1;
  /** packet id → {resolve, reject, kind} for SUBACK/UNSUBACK/PUBACK/PUBCOMP */
  #pending = new Map();
  /** packet ids of received QoS 2 publishes waiting for PUBREL */
  #awaitingRel = new Set();
  #listeners = { message: [], close: [], error: [] };
  #ping = 0;
  #lastSent = 0;
  #pingOutstanding = false;
  #connected = false;
  #ending = false;
  #closed = false;

  /**
   * @param {string} url ws:// or wss:// URL of the broker's WebSocket listener
   * @param {{clientId:string, username?:string, password?:string, keepalive?:number,
   *   clean?:boolean, WebSocket?: typeof WebSocket}} options
   */
  constructor(url, options) {
    this.url = url;
    this.options = options;
  }

  /** True between CONNACK and close. */
  get connected() {
    return this.#connected;
  }

  /**
   * Registers a listener; returns a function that removes it.
   * @param {"message"|"close"|"error"} event
   * @param {(arg: any) => void} fn
   */
  on(event, fn) {
    this.#listeners[event].push(fn);
    return () => {
      this.#listeners[event] = this.#listeners[event].filter((f) => f !== fn);
    };
  }

  #emit(event, arg) {
    for (const fn of this.#listeners[event]) {
      try {
        fn(arg);
      } catch (e) {
        if (event !== "error") this.#emit("error", e);
      }
    }
  }

  /**
   * Opens the WebSocket, sends CONNECT, resolves with the CONNACK's session-present flag;
   * rejects with the broker's reason when refused.
   * @returns {Promise<{sessionPresent:boolean}>}
   */
  connect() {
    const WS = this.options.WebSocket ?? globalThis.WebSocket;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (err) => {
        if (!settled) {
          settled = true;
          reject(err);
        }
      };
      const ws = this.#ws = new WS(this.url, ["mqtt"]);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => this.#send(encodeConnect(this.options));
      ws.onerror = () => fail(new Error(`cannot connect to ${this.url}`));
      ws.onclose = (ev) => {
        const reason = this.#ending
          ? "disconnected"
          : this.#connected
          ? "connection closed by the broker"
          : `connection closed before CONNACK (code ${ev.code})`;
        fail(new Error(reason));
        this.#shutdown(reason);
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data === "string") return this.#protocolError("text frame from the broker");
        let packets;
        try {
          packets = this.#reader.push(new Uint8Array(ev.data));
        } catch (e) {
          return this.#protocolError(e.message);
        }
        for (const p of packets) {
          if (!this.#connected && !settled) {
            if (p.type !== TYPE.CONNACK || p.body.length < 2) {
              fail(new Error("the broker did not answer with CONNACK"));
              return this.#protocolError("expected CONNACK");
            }
            const code = p.body[1];
            if (code !== 0) {
              fail(new Error(`connection refused: ${CONNACK_REASONS[code] ?? `code ${code}`}`));
              ws.close();
              return;
            }
            settled = true;
            this.#connected = true;
            this.#startKeepalive();
            resolve({ sessionPresent: (p.body[0] & 1) === 1 });
            continue;
          }
          this.#handle(p);
        }
      };
    });
  }

  /** Dispatches one packet after CONNACK. */
  #handle(p) {
    switch (p.type) {
      case TYPE.PUBLISH: {
        let m;
        try {
          m = decodePublish(p.flags, p.body);
        } catch (e) {
          return this.#protocolError(e.message);
        }
        if (m.qos === 1) this.#send(encodeAck(TYPE.PUBACK, m.id));
        if (m.qos === 2) {
          this.#send(encodeAck(TYPE.PUBREC, m.id));
          // A redelivered QoS 2 publish whose PUBREL is still due was already shown once.
          if (this.#awaitingRel.has(m.id)) return;
          if (this.#awaitingRel.size >= MAX_INFLIGHT) {
            return this.#protocolError("too many QoS 2 messages");
          }
          this.#awaitingRel.add(m.id);
        }
        this.#emit("message", m);
        return;
      }
      case TYPE.PUBREL:
        this.#awaitingRel.delete(idOf(p.body));
        this.#send(encodeAck(TYPE.PUBCOMP, idOf(p.body)));
        return;
      case TYPE.PUBREC:
        this.#send(encodeAck(TYPE.PUBREL, idOf(p.body)));
        return;
      case TYPE.PUBACK:
      case TYPE.PUBCOMP:
      case TYPE.UNSUBACK:
        return this.#settle(idOf(p.body), p.type, undefined);
      case TYPE.SUBACK:
        return this.#settle(idOf(p.body), p.type, p.body[2]);
      case TYPE.PINGRESP:
        this.#pingOutstanding = false;
        return;
      default:
        return this.#protocolError(`unexpected packet type ${p.type}`);
    }
  }

  #settle(id, type, value) {
    const w = this.#pending.get(id);
    if (!w || w.kind !== type) return;
    this.#pending.delete(id);
    w.resolve(value);
  }

  /** Registers a waiter for `kind` under a fresh packet id. */
  #expect(kind) {
    if (!this.#connected) return { error: new Error("not connected") };
    if (this.#pending.size >= MAX_INFLIGHT) return { error: new Error("too many in flight") };
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id === 65535 ? 1 : id + 1;
    this.#nextId = id === 65535 ? 1 : id + 1;
    let resolve, reject;
    const done = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.#pending.set(id, { resolve, reject, kind });
    return { id, done };
  }

  /**
   * Subscribes to one filter; resolves with the granted QoS (0x80 means refused).
   * @param {string} filter
   * @param {number} qos
   * @returns {Promise<number>}
   */
  subscribe(filter, qos = 0) {
    const w = this.#expect(TYPE.SUBACK);
    if (w.error) return Promise.reject(w.error);
    this.#send(encodeSubscribe(w.id, filter, qos));
    return w.done;
  }

  /** Unsubscribes from one filter. */
  unsubscribe(filter) {
    const w = this.#expect(TYPE.UNSUBACK);
    if (w.error) return Promise.reject(w.error);
    this.#send(encodeUnsubscribe(w.id, filter));
    return w.done;
  }

  /**
   * Publishes; resolves when sent (QoS 0), at PUBACK (QoS 1) or at PUBCOMP (QoS 2).
   * @param {string} topic
   * @param {string | Uint8Array} payload strings are sent as UTF-8
   * @param {{qos?:number, retain?:boolean}} opts
   */
  publish(topic, payload, opts = {}) {
    const qos = opts.qos ?? 0;
    const bytes = typeof payload === "string" ? utf8.encode(payload) : payload;
    if (qos === 0) {
      if (!this.#connected) return Promise.reject(new Error("not connected"));
      this.#send(encodePublish({ topic, payload: bytes, qos, retain: opts.retain }));
      return Promise.resolve();
    }
    const w = this.#expect(qos === 1 ? TYPE.PUBACK : TYPE.PUBCOMP);
    if (w.error) return Promise.reject(w.error);
    this.#send(encodePublish({ topic, payload: bytes, qos, retain: opts.retain, id: w.id }));
    return w.done;
  }

  /** Sends DISCONNECT and closes; resolves once the socket is closed. */
  end() {
    const ws = this.#ws;
    if (!ws || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.on("close", () => resolve());
      if (this.#connected) this.#send(packet(TYPE.DISCONNECT << 4, []));
      this.#ending = true;
      this.#connected = false;
      ws.close(1000);
    });
  }

  #send(bytes) {
    if (!this.#ws || this.#ws.readyState !== 1) return;
    this.#lastSent = Date.now();
    this.#ws.send(bytes);
  }

  /** PINGREQ when nothing was sent for a keepalive period; gives up when unanswered. */
  #startKeepalive() {
    const keepalive = this.options.keepalive ?? 30;
    if (keepalive <= 0) return;
    const periodMs = keepalive * 1000;
    this.#ping = setInterval(() => {
      if (this.#pingOutstanding) return this.#protocolError("no PINGRESP from the broker");
      if (Date.now() - this.#lastSent >= periodMs / 2) {
        this.#pingOutstanding = true;
        this.#send(packet(TYPE.PINGREQ << 4, []));
      }
    }, periodMs / 2);
  }

  #protocolError(message) {
    this.#emit("error", new Error(message));
    this.#ws?.close(1002);
  }

  #shutdown(reason) {
    if (this.#closed) return;
    this.#closed = true;
    this.#connected = false;
    clearInterval(this.#ping);
    for (const w of this.#pending.values()) w.reject(new Error(reason));
    this.#pending.clear();
    this.#emit("close", { reason });
  }
}
