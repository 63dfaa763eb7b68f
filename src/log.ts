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

// C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: anything a
// terminal or a log viewer may take for a line break or a control sequence. Matching them is
// the point here, hence the lint exceptions.
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

function escapeControl(c: string): string {
  const code = c.charCodeAt(0);
  return NAMED[c] ??
    (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`);
}

/**
 * `msg` with control characters written as escapes (`\n`, `\r`, `\x1b`, `\u2028`), so that a
 * client id, topic or address can never start a forged log line or drive the reader's terminal.
 * Backslashes are kept as they are: messages already hold JSON-quoted strings.
 */
export function escapeLog(msg: string): string {
  // Nearly every message is clean; the test spares it a copy.
  return CONTROL.test(msg) ? msg.replace(CONTROLS, escapeControl) : msg;
}

/**
 * Writes `<iso time> <LEVEL> <msg>`, one line per message whatever it holds (see escapeLog);
 * errors and warnings to stderr, the rest to stdout.
 */
export function createLogger(level: LogLevel = "info"): Logger {
  const logger: Logger = {
    level,
    enabled: (l) => RANK[l] >= RANK[logger.level],
    debug: (m) => {
      if (RANK[logger.level] <= 10) {
        console.log(`${new Date().toISOString()} DEBUG ${escapeLog(m)}`);
      }
    },
    info: (m) => {
      if (RANK[logger.level] <= 20) {
        console.log(`${new Date().toISOString()} INFO  ${escapeLog(m)}`);
      }
    },
    warn: (m) => {
      if (RANK[logger.level] <= 30) {
        console.error(`${new Date().toISOString()} WARN  ${escapeLog(m)}`);
      }
    },
    error: (m) => console.error(`${new Date().toISOString()} ERROR ${escapeLog(m)}`),
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
