/** Counters the core keeps for /metrics, logs and tests. */
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
  };
}
