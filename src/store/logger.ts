/** The logger every store implementation reports commit failures and recoveries through. */

/** What a store logs through: commit failures and recoveries. */
export interface StoreLogger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** For stores created without a logger (tests, tools): warnings and errors to the console. */
export const consoleStoreLogger: StoreLogger = {
  info: () => {},
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};
