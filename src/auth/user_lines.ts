/**
 * The line format the password file and the SCRAM file share: one `user:secret` per line, `#`
 * comments and blank lines allowed. Each file parses and formats its own secrets.
 */

/** Parses the file; comments (#) and blank lines are skipped. Errors name the line. */
export function parseUserLines<T>(
  text: string,
  path: string,
  secretName: string,
  parseSecret: (text: string) => T,
  fail: (message: string) => Error,
): Map<string, T> {
  const users = new Map<string, T>();
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === "" || line.trimStart().startsWith("#")) return;
    const colon = line.indexOf(":");
    if (colon <= 0) throw fail(`${path} line ${i + 1}: expected user:${secretName}`);
    try {
      users.set(line.slice(0, colon), parseSecret(line.slice(colon + 1).trim()));
    } catch (e) {
      throw fail(`${path} line ${i + 1}: ${(e as Error).message}`);
    }
  });
  return users;
}

/**
 * Returns the file text with `user`'s secret set to `secret` (or the user removed when null),
 * keeping other lines, comments and order; a new user is appended.
 */
export function setUserLine(
  text: string,
  user: string,
  secret: string | null,
): { text: string; found: boolean } {
  const lines = text === "" ? [] : text.replace(/\r?\n$/, "").split(/\r?\n/);
  let found = false;
  const out: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (!line.trimStart().startsWith("#") && colon > 0 && line.slice(0, colon) === user) {
      // Later duplicates are dropped: mosquitto would use only one of them anyway, and a reader
      // of either file keeps only the last.
      if (secret !== null && !found) out.push(`${user}:${secret}`);
      found = true;
      continue;
    }
    out.push(line);
  }
  if (!found && secret !== null) out.push(`${user}:${secret}`);
  return { text: out.length ? out.join("\n") + "\n" : "", found };
}
