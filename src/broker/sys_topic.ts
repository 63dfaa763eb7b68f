/** The `$SYS` tree: topics the broker publishes about itself and clients may only read. */

/** True for `$SYS` and every topic under `$SYS/`. */
export function isSysTopic(topic: string): boolean {
  return topic.startsWith("$SYS") && (topic.length === 4 || topic.charCodeAt(4) === 0x2f);
}
