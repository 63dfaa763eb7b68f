/** Topic name and topic filter rules (MQTT 3.1.1 4.7, 5.0 4.7). */

export interface TopicLimits {
  maxLevels: number;
  maxLength: number;
}

/**
 * Whether `filter` is a valid topic filter: non-empty, `#` only as the last whole level,
 * `+` only as a whole level. Invalid filters are answered with SUBACK 0x80, so this returns a
 * boolean instead of throwing.
 */
export function isValidFilter(filter: string, limits?: TopicLimits): boolean {
  if (filter.length === 0) return false; // MQTT-4.7.3-1
  if (limits && filter.length > limits.maxLength) return false;
  let levels = 1;
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === 0x2f /* / */) {
      levels++;
    } else if (c === 0x23 /* # */) {
      // MQTT-4.7.1-2: alone or after a separator, and the last character.
      if (i !== filter.length - 1) return false;
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false;
    } else if (c === 0x2b /* + */) {
      // MQTT-4.7.1-3: occupies an entire level.
      if (i > 0 && filter.charCodeAt(i - 1) !== 0x2f) return false;
      if (i < filter.length - 1 && filter.charCodeAt(i + 1) !== 0x2f) return false;
    } else if (c === 0) {
      return false;
    }
  }
  if (limits && levels > limits.maxLevels) return false;
  return true;
}

/** Whether `topic` is a valid topic name for PUBLISH (no wildcards, non-empty). */
export function isValidTopicName(topic: string, limits?: TopicLimits): boolean {
  if (topic.length === 0) return false;
  if (limits && topic.length > limits.maxLength) return false;
  let levels = 1;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x2f) levels++;
    else if (c === 0x23 || c === 0x2b || c === 0) return false;
  }
  return !(limits && levels > limits.maxLevels);
}

/** Reference matcher (the topic tree is the fast path); used for ACLs and tests. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false; // MQTT-4.7.2-1
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true; // also matches the parent level: "a/#" matches "a"
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
