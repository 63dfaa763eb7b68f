#!/usr/bin/env bash
# Builds the MqttWk image from the repository's Dockerfile (left as it is) and checks it in a real
# Docker engine: publish/subscribe through it with mosquitto_pub/sub, a retained message that
# survives replacing the container on a named volume, a prompt `docker stop` with exit 0 (Deno
# as PID 1 handles SIGTERM), the HEALTHCHECK turning healthy, a clear message (not a stack trace)
# for a root-owned bind-mounted data directory, `--help` showing the docker run form, and what
# is (not) in the image. Prints the image size and its layers.
#
# When the base image (node:20-bookworm-slim) is neither present nor pullable, make_base.sh makes
# a stand-in first (debootstrap, cached under ~/.cache/mqttwk/). Needs a running dockerd, root
# (for debootstrap, once) and mosquitto-clients. Exit 0 = all checks passed, 1 = a check failed,
# 2 = Docker cannot run here.
#
# Usage: scripts/docker/test.sh          (IMAGE=mqttwk:test by default)
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE="${IMAGE:-mqttwk:test}"
run_id="mqttwk-test-$$"
volume="$run_id-data"
workdir="$(mktemp -d)"
started=$SECONDS

say() { echo "docker-test: $*"; }
ok() { say "ok - $*"; }
fail() {
  say "FAIL - $*"
  exit 1
}

cleanup() {
  docker rm -f "$run_id-a" "$run_id-b" "$run_id-c" >/dev/null 2>&1 || true
  docker volume rm -f "$volume" >/dev/null 2>&1 || true
  if [[ -n ${sub_pid:-} ]]; then kill "$sub_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

if ! docker info >/dev/null 2>&1; then
  say "Docker cannot run here: no daemon answers (start it: dockerd --iptables=false --bridge=none)"
  exit 2
fi
for bin in mosquitto_pub mosquitto_sub; do
  command -v "$bin" >/dev/null || fail "$bin is missing (apt-get install mosquitto-clients)"
done

scripts/docker/make_base.sh

say "building $IMAGE"
previous=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# The build stage is tagged too, so that it stays as the cache of the next build while superseded
# ones (dangling, labelled as this Dockerfile's build stage) are removed rather than piling up.
if ! docker build --network=host --target build -t "$IMAGE-build" . >"$workdir/build.log" 2>&1 ||
  ! docker build --network=host -t "$IMAGE" . >>"$workdir/build.log" 2>&1; then
  tail -40 "$workdir/build.log"
  fail "docker build"
fi
docker image prune -f --filter label=org.mqttwk.stage=build >/dev/null
if [[ -n $previous && $previous != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]]; then
  docker rmi "$previous" >/dev/null 2>&1 || true # the image this run's build replaced
fi
ok "image built in $((SECONDS - started)) s"

# Three free loopback ports, distinct (bound at once, released together).
read -r mqtt_port ws_port http_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# MQTT and WebSocket ports as flags, the HTTP port by environment: both routes are exercised,
# and the health check must find the port either way.
broker() {
  local name=$1
  shift
  docker run -d --net=host --name "$name" -v "$volume:/app/data" -e "SERVER_PORT=$http_port" \
    --health-interval=1s --health-start-period=30s --health-retries=3 \
    "$IMAGE" --host=127.0.0.1 --port="$mqtt_port" --ws-port="$ws_port" "$@" >/dev/null
}

# Waits (bounded) for the broker's "started" log line; fails with its log otherwise.
wait_started() {
  local name=$1
  for _ in $(seq 1 300); do
    if docker logs "$name" 2>&1 | grep "started (node" >/dev/null; then return 0; fi
    if [[ $(docker inspect -f '{{.State.Running}}' "$name") != true ]]; then break; fi
    sleep 0.1
  done
  docker logs "$name" 2>&1 | tail -20
  fail "$name did not start"
}

docker volume create "$volume" >/dev/null
broker "$run_id-a"
wait_started "$run_id-a"
ok "broker runs with --net=host on MQTT $mqtt_port, WebSocket $ws_port, HTTP $http_port"

# Live publish/subscribe: the subscriber also asks for a retained "ready" topic, so its first
# line proves the subscription is in place before the live message is sent.
mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -q 1 -r -t "$run_id/ready" -m ready ||
  fail "mosquitto_pub (retained ready)"
mkfifo "$workdir/sub"
stdbuf -oL mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -q 1 -v -W 20 -C 2 \
  -t "$run_id/ready" -t "$run_id/live" >"$workdir/sub" &
sub_pid=$!
exec 3<"$workdir/sub"
read -r -t 20 first <&3 || fail "subscriber got nothing"
[[ $first == "$run_id/ready ready" ]] || fail "first message: $first"
mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -q 1 -t "$run_id/live" -m "hello from the host" ||
  fail "mosquitto_pub (live)"
read -r -t 20 second <&3 || fail "subscriber did not get the live message"
[[ $second == "$run_id/live hello from the host" ]] || fail "live message: $second"
exec 3<&-
wait "$sub_pid"
sub_pid=""
ok "mosquitto_pub/sub through the container (QoS 1, live and retained)"

# The retained message that must outlive the container.
keep="kept across containers $RANDOM"
mosquitto_pub -h 127.0.0.1 -p "$mqtt_port" -q 1 -r -t "$run_id/kept" -m "$keep" ||
  fail "mosquitto_pub (kept)"

health=""
for _ in $(seq 1 600); do
  health=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}no HEALTHCHECK{{end}}' "$run_id-a")
  [[ $health == "no HEALTHCHECK" ]] && fail "the image has no HEALTHCHECK"
  [[ $health == healthy ]] && break
  sleep 0.1
done
[[ $health == healthy ]] ||
  fail "HEALTHCHECK: $health $(docker inspect -f '{{json .State.Health.Log}}' "$run_id-a")"
ok "HEALTHCHECK turned healthy (/health on the port given by SERVER_PORT)"

# Nothing compiled or downloaded at run time: the container added nothing under /app but data.
changed=$(docker diff "$run_id-a" | awk '{print $2}' | grep '^/app' | grep -v '^/app/data' || true)
[[ -z $changed ]] || fail "the running container wrote into the image: $changed"
if docker logs "$run_id-a" 2>&1 | grep "Download" >/dev/null; then
  fail "the broker downloaded at start: $(docker logs "$run_id-a" 2>&1 | grep Download)"
fi
ok "no module compiled or downloaded at start (no Download line; docker diff: nothing under /app but data)"

stop_start=$SECONDS
docker stop -t 20 "$run_id-a" >/dev/null
stop_secs=$((SECONDS - stop_start))
code=$(docker inspect -f '{{.State.ExitCode}}' "$run_id-a")
[[ $code == 0 ]] || fail "docker stop: exit code $code (137 = killed after the timeout)"
((stop_secs <= 5)) || fail "docker stop took $stop_secs s"
# The engine may hand over a stopped container's last log lines a moment after it exits.
# grep reads the whole log: with pipefail, grep -q exiting at the first match could fail the
# pipeline on docker logs' SIGPIPE (a false "not found").
sigterm_logged() { docker logs "$run_id-a" 2>&1 | grep "SIGTERM received" >/dev/null; }
for _ in $(seq 1 25); do sigterm_logged && break; sleep 0.2; done
sigterm_logged || fail "no SIGTERM line in the log: $(docker logs "$run_id-a" 2>&1 | tail -3)"
ok "docker stop: SIGTERM handled by PID 1, exit 0 in ${stop_secs} s"
docker rm "$run_id-a" >/dev/null

broker "$run_id-b"
wait_started "$run_id-b"
got=$(mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -q 1 -C 1 -W 20 -t "$run_id/kept") ||
  fail "no retained message after replacing the container"
[[ $got == "$keep" ]] || fail "retained message after replacement: $got"
ok "retained message survived replacing the container on volume $volume"
docker stop -t 20 "$run_id-b" >/dev/null

# A root-owned host directory bind-mounted as the data directory (the image runs as uid 1000).
mkdir -p "$workdir/rootdata"
chmod 755 "$workdir/rootdata"
set +e
out=$(docker run --rm --net=host -v "$workdir/rootdata:/app/data" "$IMAGE" \
  --host=127.0.0.1 --port="$mqtt_port" --ws-port="$ws_port" --server.port="$http_port" 2>&1)
code=$?
set -e
[[ $code == 1 ]] || fail "root-owned data dir: exit code $code, output: $out"
grep -q "chown -R 1000 /app/data" <<<"$out" || fail "root-owned data dir: no chown hint: $out"
if grep -qE '^\s+at ' <<<"$out"; then fail "root-owned data dir: stack trace: $out"; fi
ok "root-owned bind-mounted data dir: $(grep -o 'data directory.*' <<<"$out" | cut -c1-150)..."

help=$(docker run --rm "$IMAGE" --help 2>&1)
grep -q "^Usage: docker run" <<<"$help" || fail "--help: $(head -1 <<<"$help")"
if grep -q "deno task start" <<<"$help"; then fail "--help mentions deno task start"; fi
ok "--help in the container: $(head -1 <<<"$help")"

# What the image holds: only the broker's npm packages, each once, and no npm cache.
inside=$(docker run --rm --entrypoint sh "$IMAGE" -c \
  'ls node_modules node_modules/.deno; ls -d .cache/deno/npm /root/.npm /home/node/.npm \
   /usr/local/lib/node_modules/deno 2>/dev/null; true')
for pkg in mqtt playwright-core @types; do
  if grep -qE "^$pkg(@|$)" <<<"$inside"; then fail "test-only package $pkg is in the image"; fi
done
for pkg in yaml kafkajs ioredis; do
  grep -qE "^$pkg$" <<<"$inside" || fail "runtime package $pkg is missing from node_modules"
done
for dir in .cache/deno/npm /root/.npm /home/node/.npm /usr/local/lib/node_modules/deno; do
  if grep -qx "$dir" <<<"$inside"; then fail "$dir is in the image"; fi
done
ok "image holds yaml, kafkajs, ioredis once (node_modules only), no test packages, no npm cache"

# Compiled at build: the emit cache holds main.ts and both workers (started with `new Worker`).
gen=$(docker run --rm --entrypoint sh "$IMAGE" -c 'cd .cache/deno/gen/file/app && find . -name "*.js"')
for mod in main.ts src/store/sqlite_worker.ts src/bridge/kafka/producer_worker.ts; do
  grep -qx "./$mod.js" <<<"$gen" || fail "$mod is not compiled in the image"
done
ok "$(wc -l <<<"$gen") modules compiled at build, main.ts and both workers among them"

size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
say "image $IMAGE: $((size / 1000000)) MB; layers:"
docker history --format '  {{.Size}}\t{{.CreatedBy}}' "$IMAGE" | cut -c1-150
say "all checks passed in $((SECONDS - started)) s"
