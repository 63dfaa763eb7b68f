/** LevelTrie: the topic tree under the retained messages and the router's cached topics. */
import assert from "node:assert/strict";
import { LevelTrie } from "../../src/broker/level_trie.ts";
import { topicMatches } from "../../src/broker/topic.ts";

const TOPICS = [
  "a",
  "a/b",
  "a/b/c",
  "a//c",
  "/a",
  "b/b",
  "$SYS/x",
  "$SYS",
  "a/$x",
  "",
];
const FILTERS = ["#", "+", "a/#", "a/+", "+/b", "+/+/c", "a/+/c", "$SYS/#", "+/$x", "/#", "a//c"];

Deno.test("match yields exactly the topics the filter matches, by the rules of topicMatches", () => {
  const trie = new LevelTrie<string>();
  for (const t of TOPICS) trie.set(t, t);
  for (const f of FILTERS) {
    const got = [...trie.match(f)].sort();
    const want = TOPICS.filter((t) => topicMatches(f, t)).sort();
    assert.deepEqual(got, want, `filter ${f}`);
  }
});

Deno.test("set returns the value it replaced, get finds it, delete prunes empty branches", () => {
  const trie = new LevelTrie<number>();
  assert.equal(trie.set("a/b/c", 1), null);
  assert.equal(trie.set("a/b/c", 2), 1);
  assert.equal(trie.set("a", 3), null);
  assert.equal(trie.get("a/b/c"), 2);
  assert.equal(trie.get("a/b"), null);
  assert.equal(trie.nodeCount, 3);
  assert.equal(trie.delete("a/b"), null, "a level with no value");
  assert.equal(trie.delete("a/b/c"), 2);
  assert.equal(trie.nodeCount, 1, "only a's node, which holds a value, is left");
  assert.equal(trie.delete("a"), 3);
  assert.equal(trie.nodeCount, 0);
  assert.equal(trie.delete("x/y"), null);
});

Deno.test("a walk under way sees a value removed or replaced after it started as it is then", () => {
  const trie = new LevelTrie<string>();
  for (const t of ["a/1", "a/2", "a/3"]) trie.set(t, t);
  const walk = trie.match("a/+");
  assert.equal(walk.next().value, "a/1");
  trie.delete("a/2");
  trie.set("a/3", "a/3 (new)");
  assert.deepEqual([...walk], ["a/3 (new)"]);
});
