/** Counters the core keeps for /metrics, `$SYS`, logs and tests. */
export interface BrokerStats {
  connections: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  messagesIn: number;
  messagesOut: number;
  dropped: number;
  /** Messages not delivered (or no longer retained) because their Message Expiry passed. */
  expired: number;
  /** Offline sessions removed because their expiry interval passed, since start. */
  sessionsExpired: number;
  /** Most connections open at once since start. */
  connectionsMax: number;
  /** Sockets handed to the broker since start (refused ones included). */
  socketsOpened: number;
  /** CONNECT packets received since start. */
  connectsReceived: number;
  /** MQTT packets of every type received since start. */
  packetsIn: number;
  /**
   * MQTT packets other than PUBLISH sent since start (acks, CONNACK, SUBACK, PINGRESP, ...);
   * PUBLISHes are `messagesOut`.
   */
  controlOut: number;
  /** MQTT bytes read from clients since start (WebSocket framing not counted). */
  bytesIn: number;
  /** MQTT bytes handed to client transports since start. */
  bytesOut: number;
}

/** A fresh set of counters, all zero. */
export function newStats(): BrokerStats {
  return {
    connections: 0,
    sessions: 0,
    subscriptions: 0,
    retained: 0,
    messagesIn: 0,
    messagesOut: 0,
    dropped: 0,
    expired: 0,
    sessionsExpired: 0,
    connectionsMax: 0,
    socketsOpened: 0,
    connectsReceived: 0,
    packetsIn: 0,
    controlOut: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}
