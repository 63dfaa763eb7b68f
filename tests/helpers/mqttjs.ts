/** Thin wrappers around the third-party mqtt.js client for end-to-end tests. */
import { Buffer } from "node:buffer";
import mqtt from "mqtt";
import type { IClientOptions, MqttClient } from "mqtt";

export interface Received {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
}

/** Collects the messages a client receives and lets tests wait for them. */
export class Inbox {
  readonly messages: Received[] = [];
  #waiters = new Set<() => void>();

  push(m: Received): void {
    this.messages.push(m);
    for (const w of [...this.#waiters]) w();
  }

  /** Messages on `topic` (or all). */
  on(topic?: string): Received[] {
    return topic === undefined ? this.messages : this.messages.filter((m) => m.topic === topic);
  }

  /** Waits for a message matching `pred`; throws after `timeoutMs` listing what arrived. */
  waitFor(pred: (m: Received) => boolean, timeoutMs = 5_000, what = "message"): Promise<Received> {
    return this.#wait(() => this.messages.find(pred), timeoutMs, what);
  }

  /** Waits until at least `n` messages match `pred`. */
  waitForCount(
    n: number,
    pred: (m: Received) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<Received[]> {
    return this.#wait(
      () => {
        const ms = this.messages.filter(pred);
        return ms.length >= n ? ms : undefined;
      },
      timeoutMs,
      `${n} messages`,
    );
  }

  #wait<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const test = () => {
        const v = check();
        if (v !== undefined) {
          this.#waiters.delete(test);
          clearTimeout(timer);
          resolve(v);
        }
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(test);
        const got = this.messages.slice(-10).map((m) => `${m.topic}=${m.payload.slice(0, 40)}`);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; ${this.messages.length} received` +
              (got.length ? ` (last: ${got.join(", ")})` : ""),
          ),
        );
      }, timeoutMs);
      this.#waiters.add(test);
      test();
    });
  }
}

export interface Client {
  client: MqttClient;
  inbox: Inbox;
  /** Subscribe and check the SUBACK granted what was asked (no 0x80). */
  subscribe(filter: string | string[], qos?: 0 | 1 | 2): Promise<number[]>;
  publish(topic: string, payload: string | Uint8Array, opts?: PubOpts): Promise<void>;
  /**
   * Resolves once the broker has answered a request sent now. It handles a connection's packets
   * in order, so whatever it had written to this client before (retained messages after a
   * SUBACK, say) has then arrived: "nothing more came" can be checked without a grace period.
   */
  sync(): Promise<void>;
  /** Normal DISCONNECT and socket close. */
  close(): Promise<void>;
}

export interface PubOpts {
  qos?: 0 | 1 | 2;
  retain?: boolean;
}

/**
 * Connects with mqtt.js (no automatic reconnect) and collects received messages in an Inbox.
 * Defaults: MQTT 3.1.1, clean session, keepalive 30 s.
 */
export async function connectMqttJs(url: string, opts: IClientOptions = {}): Promise<Client> {
  const client = await mqtt.connectAsync(url, {
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    keepalive: 30,
    protocolVersion: 4,
    ...opts,
  });
  const inbox = new Inbox();
  client.on("message", (topic, payload, packet) => {
    inbox.push({
      topic,
      payload: new TextDecoder().decode(payload),
      qos: packet.qos,
      retain: packet.retain,
      dup: packet.dup,
    });
  });
  // Errors after the connection are reported by the tests' own expectations; keep mqtt.js from
  // throwing an unhandled "error" event.
  client.on("error", () => {});
  return {
    client,
    inbox,
    subscribe: async (filter, qos = 0) => {
      const grants = await client.subscribeAsync(filter, { qos });
      const codes = grants.map((g) => g.qos);
      if (codes.some((c) => c === 0x80 || c > 2)) {
        throw new Error(`subscription to ${filter} refused: ${codes}`);
      }
      return codes;
    },
    publish: async (topic, payload, o = {}) => {
      await client.publishAsync(
        topic,
        typeof payload === "string" ? payload : Buffer.from(payload),
        { qos: o.qos ?? 0, retain: o.retain ?? false },
      );
    },
    sync: async () => {
      // An UNSUBSCRIBE of a filter nobody uses: harmless, and every broker answers it.
      await client.unsubscribeAsync(`mqttwk-sync/${crypto.randomUUID()}`);
    },
    close: async () => {
      if (client.connected) {
        await client.endAsync();
      } else {
        await client.endAsync(true);
      }
    },
  };
}
