import assert from "node:assert/strict";
import { AclChecker, filtersOverlap, filterWithin, parseAcl } from "../../src/auth/acl.ts";
import type { ClientInfo } from "../../src/broker/model.ts";

const client = (username: string | undefined, clientId = "dev1"): ClientInfo => ({
  clientId,
  username,
  remoteAddress: "127.0.0.1:1",
  transport: "tcp",
  protocolVersion: 4,
});

const ACL = `
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read shared/+/status
topic write commands/alice
topic deny alice/private/#

user bob smith
topic weird topic/with spaces

clientid gateway-1
topic write gateways/raw/#

pattern read sensors/%u/#
pattern write devices/%c/out
pattern readwrite all/%u/%c
pattern read announcements
`;

const acl = new AclChecker(parseAcl(ACL));
const alice = client("alice");
const anon = client(undefined);

Deno.test("the ACL parser reads sections, access words and topics with spaces", () => {
  const f = parseAcl(ACL);
  assert.deepEqual(f.anonymous.map((r) => [r.access, r.filter]), [["read", "public/#"]]);
  assert.deepEqual(
    f.users.get("alice")!.map((r) => [r.access, r.filter]),
    [
      ["readwrite", "alice/#"],
      ["read", "shared/+/status"],
      ["write", "commands/alice"],
      ["deny", "alice/private/#"],
    ],
  );
  assert.deepEqual(f.users.get("bob smith")!.map((r) => [r.access, r.filter]), [
    ["readwrite", "weird topic/with spaces"],
  ]);
  assert.equal(f.clientIds.get("gateway-1")!.length, 1);
  assert.equal(f.patterns.length, 4);
});

Deno.test("the ACL parser rejects unknown keywords and invalid filters with the line", () => {
  assert.throws(() => parseAcl("topic read a/#\nallow a\n", "acl"), /acl line 2: unknown keyword/);
  assert.throws(() => parseAcl("topic read a/#/b\n", "acl"), /line 1: invalid topic filter/);
  assert.throws(() => parseAcl("topic read a+\n", "acl"), /invalid topic filter/);
  assert.throws(() => parseAcl("user\n", "acl"), /user needs a name/);
  assert.throws(() => parseAcl("topic read\n", "acl"), /invalid topic filter ""/);
  assert.throws(() => parseAcl("pattern deny\n", "acl"), /invalid topic filter ""/);
});

Deno.test("publishing needs a write rule and no matching deny", () => {
  assert.equal(acl.canPublish(alice, "alice/x"), true);
  assert.equal(acl.canPublish(alice, "alice"), true, "a/# also matches the parent a");
  assert.equal(acl.canPublish(alice, "commands/alice"), true);
  assert.equal(acl.canPublish(alice, "commands/bob"), false);
  assert.equal(acl.canPublish(alice, "shared/x/status"), false, "read only");
  assert.equal(acl.canPublish(alice, "alice/private/key"), false, "deny wins");
  assert.equal(acl.canPublish(alice, "sensors/alice/t"), false, "read-only pattern");
  assert.equal(acl.canPublish(alice, "devices/dev1/out"), true, "%c pattern");
  assert.equal(acl.canPublish(alice, "devices/dev2/out"), false);
  assert.equal(acl.canPublish(alice, "all/alice/dev1"), true);
  assert.equal(acl.canPublish(client("bob smith"), "weird topic/with spaces"), true);
});

Deno.test("topic rules before any user line apply to clients without a username only", () => {
  assert.equal(acl.canSubscribe(anon, "public/news"), true);
  assert.equal(acl.canSubscribe(alice, "public/news"), false);
  assert.equal(acl.canPublish(anon, "public/news"), false, "read only");
  assert.equal(acl.canSubscribe(anon, "announcements"), true, "patterns apply to everyone");
  assert.equal(acl.canSubscribe(anon, "sensors/x/y"), false, "%u needs a username");
  assert.equal(acl.canPublish(anon, "devices/dev1/out"), true);
});

Deno.test("clientid sections apply to that client id whatever the username", () => {
  assert.equal(acl.canPublish(client("alice", "gateway-1"), "gateways/raw/a"), true);
  assert.equal(acl.canPublish(client(undefined, "gateway-1"), "gateways/raw/a"), true);
  assert.equal(acl.canPublish(alice, "gateways/raw/a"), false);
});

Deno.test("a wildcard subscription is allowed only inside what the user may read", () => {
  assert.equal(acl.canSubscribe(alice, "sensors/alice/+"), true);
  assert.equal(acl.canSubscribe(alice, "sensors/alice/#"), true);
  assert.equal(acl.canSubscribe(alice, "sensors/alice"), true);
  assert.equal(acl.canSubscribe(alice, "sensors/alice/a/+/b"), true);
  assert.equal(acl.canSubscribe(alice, "sensors/+/temp"), false, "+ reaches other users");
  assert.equal(acl.canSubscribe(alice, "sensors/#"), false);
  assert.equal(acl.canSubscribe(alice, "#"), false);
  assert.equal(acl.canSubscribe(alice, "+/alice/x"), false);
  assert.equal(acl.canSubscribe(alice, "shared/+/status"), true);
  assert.equal(acl.canSubscribe(alice, "shared/room1/status"), true);
  assert.equal(acl.canSubscribe(alice, "shared/+/#"), false);
  assert.equal(acl.canSubscribe(alice, "shared/#"), false);
  assert.equal(acl.canSubscribe(alice, "commands/alice"), false, "write only");
});

Deno.test("a filter partly over a denied topic is granted and checked per message; one wholly inside is refused (mosquitto's rule)", () => {
  assert.equal(acl.canSubscribe(alice, "alice/public/#"), true);
  assert.equal(acl.checkEachDelivery(alice, "alice/public/#"), false, "no deny rule overlaps");
  assert.equal(acl.canSubscribe(alice, "alice/#"), true, "covers alice/private/... in part");
  assert.equal(acl.checkEachDelivery(alice, "alice/#"), true);
  assert.equal(acl.canSubscribe(alice, "alice/+/key"), true, "+ may be private");
  assert.equal(acl.checkEachDelivery(alice, "alice/+/key"), true);
  assert.equal(acl.canSubscribe(alice, "alice/private"), false, "# includes the parent level");
  assert.equal(acl.canSubscribe(alice, "alice/private/+"), false, "wholly inside the deny rule");
  assert.equal(acl.canSubscribe(alice, "alice/privately"), true);
  assert.equal(acl.checkEachDelivery(alice, "alice/privately"), false);
  // Each message of a checked filter: a topic name is plain matching.
  assert.equal(acl.canSubscribe(alice, "alice/private/key"), false);
  assert.equal(acl.canSubscribe(alice, "alice/public/key"), true);
});

Deno.test("one denied topic no longer keeps a user who may read everything from subscribing to #", () => {
  const all = new AclChecker(parseAcl("user bob\ntopic readwrite #\ntopic deny secret/#\n"));
  const bob = client("bob");
  assert.equal(all.canSubscribe(bob, "#"), true);
  assert.equal(all.checkEachDelivery(bob, "#"), true);
  assert.equal(all.canSubscribe(bob, "secret/#"), false);
  assert.equal(all.canSubscribe(bob, "secret/x"), false);
  assert.equal(all.canSubscribe(bob, "public/x"), true);
});

Deno.test("usernames or client ids with / + or # do not widen patterns", () => {
  assert.equal(acl.canSubscribe(client("+"), "sensors/+/x"), false);
  assert.equal(acl.canSubscribe(client("#"), "sensors/#"), false);
  assert.equal(acl.canSubscribe(client("a/b"), "sensors/a/b/x"), false);
  assert.equal(acl.canPublish(client("x", "+"), "devices/+/out"), false);
  assert.equal(acl.canPublish(client("x", "a/b"), "devices/a/b/out"), false);
});

Deno.test("$ topics are not matched by rules that start with a wildcard", () => {
  const all = new AclChecker(parseAcl("user root\ntopic readwrite #\ntopic read +/x\n"));
  const root = client("root");
  assert.equal(all.canSubscribe(root, "#"), true);
  assert.equal(all.canPublish(root, "a/b"), true);
  assert.equal(all.canSubscribe(root, "$SYS/#"), false);
  assert.equal(all.canSubscribe(root, "$SYS/x"), false);
  assert.equal(all.canPublish(root, "$SYS/x"), false);
  const sys = new AclChecker(parseAcl("user root\ntopic read $SYS/#\n"));
  assert.equal(sys.canSubscribe(root, "$SYS/broker/+"), true);
  assert.equal(sys.canSubscribe(root, "#"), false);
});

Deno.test("a user without rules may do nothing", () => {
  assert.equal(acl.canPublish(client("mallory"), "alice/x"), false);
  assert.equal(acl.canSubscribe(client("mallory"), "public/#"), false);
});

Deno.test("replacing the ACL takes effect for clients already checked", () => {
  const checker = new AclChecker(parseAcl("user alice\ntopic a/#\n"));
  assert.equal(checker.canPublish(alice, "a/1"), true);
  checker.replace(parseAcl("user alice\ntopic b/#\n"));
  assert.equal(checker.canPublish(alice, "a/1"), false);
  assert.equal(checker.canPublish(alice, "b/1"), true);
});

Deno.test("filter containment and overlap follow MQTT matching", () => {
  const s = (f: string) => f.split("/");
  const within = (a: string, b: string) => filterWithin(s(a), s(b));
  const overlap = (a: string, b: string) => filtersOverlap(s(a), s(b));
  assert.equal(within("a/b", "a/b"), true);
  assert.equal(within("a/b", "a/+"), true);
  assert.equal(within("a/+", "a/b"), false);
  assert.equal(within("a/+", "a/+"), true);
  assert.equal(within("a/#", "a/+"), false);
  assert.equal(within("a/+", "a/#"), true);
  assert.equal(within("a", "a/#"), true);
  assert.equal(within("a/#", "a/#"), true);
  assert.equal(within("#", "#"), true);
  assert.equal(within("a/b/c", "a/+"), false);
  assert.equal(within("a", "a/+"), false);
  assert.equal(within("a//b", "a/+/b"), true);
  assert.equal(overlap("a/+", "+/b"), true);
  assert.equal(overlap("a/+", "a"), false);
  assert.equal(overlap("a/#", "a"), true);
  assert.equal(overlap("a/b", "a/c"), false);
  assert.equal(overlap("+/+", "a/b/c"), false);
  assert.equal(overlap("#", "$SYS/a"), false);
  assert.equal(overlap("$SYS/#", "$SYS/a"), true);
});
