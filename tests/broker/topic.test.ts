import assert from "node:assert/strict";
import { RetainedIndex } from "../../src/broker/retained.ts";
import { isValidFilter, isValidTopicName, topicMatches } from "../../src/broker/topic.ts";
import { TopicTree } from "../../src/broker/topic_tree.ts";
import type { StoredMessage } from "../../src/broker/model.ts";

const CASES: [filter: string, topic: string, match: boolean][] = [
  ["a/b", "a/b", true],
  ["a/+", "a/b", true],
  ["a/+", "a/b/c", false],
  ["a/#", "a", true],
  ["a/#", "a/b/c", true],
  ["#", "a/b", true],
  ["#", "$SYS/x", false],
  ["+/x", "$SYS/x", false],
  ["$SYS/#", "$SYS/x", true],
  ["+", "a", true],
  ["+", "a/b", false],
  ["+", "/a", false],
  ["+/a", "x/a", true],
  ["+/+", "/a", true],
  ["a/+/b", "a//b", true],
  ["/#", "/a", true],
  ["a/b", "a/b/", false],
  ["a/b/#", "a/b/", true],
  ["+/#", "a", true],
];

Deno.test("topic tree matches filters exactly as the spec says", () => {
  for (const [filter, topic, match] of CASES) {
    const tree = new TopicTree<number>();
    tree.add(filter, "c", 1);
    const got: string[] = [];
    tree.match(topic, (o) => got.push(o));
    assert.equal(got.length === 1, match, `${filter} vs ${topic}`);
    assert.equal(topicMatches(filter, topic), match, `reference ${filter} vs ${topic}`);
  }
});

Deno.test("retained index finds the same topics as the reference matcher", () => {
  const topics = ["a", "a/b", "a/b/c", "a//b", "/a", "$SYS/x", "x/a", "a/b/"];
  const idx = new RetainedIndex();
  for (const t of topics) idx.set(t, { topic: t, payload: new Uint8Array(1) } as StoredMessage);
  for (const filter of ["#", "+", "a/#", "a/+", "+/a", "a/+/b", "$SYS/#", "+/+", "/#", "a/b/#"]) {
    const got = idx.match(filter).map((m) => m.topic).sort();
    const want = topics.filter((t) => topicMatches(filter, t)).sort();
    assert.deepEqual(got, want, filter);
  }
  idx.set("a/b", null);
  assert.equal(idx.get("a/b"), null);
  assert.equal(idx.size, topics.length - 1);
});

Deno.test("topic tree reports the first and last owner of a filter", () => {
  const tree = new TopicTree<number>();
  assert.equal(tree.add("a/+", "c1", 0), true);
  assert.equal(tree.add("a/+", "c2", 1), false);
  assert.equal(tree.remove("a/+", "c1"), true);
  assert.equal(tree.remove("a/+", "c2"), "last");
  assert.equal(tree.remove("a/+", "c2"), false);
  assert.deepEqual(tree.filters(), []);
});

Deno.test("filter validation accepts legal wildcards and rejects the rest", () => {
  for (const f of ["#", "+", "+/a", "a/+/b", "a/#", "/", "//", "$SYS/#"]) {
    assert.ok(isValidFilter(f), f);
  }
  for (const f of ["", "a/#/b", "a+", "+a/b", "a/b#", "#/a", "a\u0000b"]) {
    assert.ok(!isValidFilter(f), f);
  }
  assert.ok(!isValidFilter("a/b/c", { maxLevels: 2, maxLength: 100 }));
  assert.ok(isValidTopicName("a/b"));
  assert.ok(!isValidTopicName("a/+"));
  assert.ok(!isValidTopicName(""));
});
