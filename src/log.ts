/** Leveled, line-oriented logging. No Deno API: the core logs through this too. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  level: LogLevel;
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  enabled(level: LogLevel): boolean;
}

/** Writes `<iso time> <LEVEL> <msg>`; errors and warnings to stderr, the rest to stdout. */
export function createLogger(level: LogLevel = "info"): Logger {
  const logger: Logger = {
    level,
    enabled: (l) => RANK[l] >= RANK[logger.level],
    debug: (m) => {
      if (RANK[logger.level] <= 10) console.log(`${new Date().toISOString()} DEBUG ${m}`);
    },
    info: (m) => {
      if (RANK[logger.level] <= 20) console.log(`${new Date().toISOString()} INFO  ${m}`);
    },
    warn: (m) => {
      if (RANK[logger.level] <= 30) console.error(`${new Date().toISOString()} WARN  ${m}`);
    },
    error: (m) => console.error(`${new Date().toISOString()} ERROR ${m}`),
  };
  return logger;
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = {
  level: "error",
  enabled: () => false,
  debug() {},
  info() {},
  warn() {},
  error() {},
};
