# MqttWk broker image. It is meant to be run with host networking, so the broker listens directly
# on the host's ports (MQTT 8885 and WebSocket 9995 unless configured otherwise):
#
#   docker build -t mqttwk .
#   docker run --net=host -v mqttwk-data:/app/data mqttwk [--port 1883 ...]
#
# Arguments after the image name are MqttWk flags (see `--help`); environment variables such as
# `-e MQTTWK_BROKER_PORT=1883` and a mounted file (`-v $PWD/my.yaml:/app/config/application.yaml`)
# work too. No TLS key is baked in: for ssl-enabled, mount one (`-v $PWD/keystore:/app/keystore:ro`).
# The broker runs as uid 1000 (user node): a bind-mounted data directory must be writable by it
# (`chown -R 1000 DIR`). scripts/docker/test.sh builds, runs and checks this image.

# --- Build stage: Deno, the npm packages the broker imports, and the compiled module cache -------
FROM node:20-bookworm-slim AS build
# Lets scripts/docker/test.sh remove superseded build stages (and nothing else) after a rebuild.
LABEL org.mqttwk.stage=build

# Same Deno as development and CI, installed the same way; only its binary goes on to the image
# (not npm's copy of it, its wrapper or npm's cache).
RUN npm i -g deno@2.9.6 \
 && mkdir -p /opt/deno \
 && cp "$(npm root -g)/deno/deno" /opt/deno/deno \
 && /opt/deno/deno --version
ENV PATH=/opt/deno:$PATH \
    DENO_DIR=/app/.cache/deno \
    DENO_NO_UPDATE_CHECK=1
WORKDIR /app

# Every npm package into this stage's Deno cache first, in a layer of its own, so that editing code
# does not download them again. This stage is not shipped: the cut below decides what is.
COPY deno.json deno.lock ./
RUN deno install --frozen && rm -rf node_modules

COPY main.ts ./
COPY src/ src/
COPY scripts/docker/healthcheck.ts scripts/docker/runtime_config.ts scripts/docker/
# Only what the broker's entry points import: runtime_config.ts cuts deno.json's import map down to
# the packages their module graph uses, so the test-only ones (mqtt, playwright-core, @types) stay
# out. The workers are entry points of their own (started with `new Worker`), so they are compiled
# here too instead of at first start. node_modules is what runs; Deno's copy of the same packages
# in its npm cache is dropped so that they are stored once.
ARG ENTRYPOINTS="main.ts src/store/sqlite_worker.ts src/bridge/kafka/producer_worker.ts scripts/docker/healthcheck.ts"
RUN deno run --allow-read --allow-write --allow-run --allow-env scripts/docker/runtime_config.ts $ENTRYPOINTS \
 && deno install --entrypoint $ENTRYPOINTS \
 && rm -rf "$DENO_DIR/npm" scripts/docker/runtime_config.ts
COPY config/ config/

# --- Runtime stage -------------------------------------------------------------------------------
FROM node:20-bookworm-slim

COPY --from=build /opt/deno/deno /usr/local/bin/deno
# `--help` shows this invocation instead of `deno task start`. The HTTP endpoint (loopback only)
# is on for the HEALTHCHECK; an environment variable so a flag or -e can still turn it off.
ENV DENO_DIR=/app/.cache/deno \
    DENO_NO_UPDATE_CHECK=1 \
    MQTTWK_INVOCATION="docker run --net=host -v mqttwk-data:/app/data mqttwk" \
    MQTTWK_BROKER_HTTP_ENABLED=true
WORKDIR /app

# Code and caches stay owned by root (read-only to the broker); copied, not chown'd afterwards,
# so no layer holds a second copy. Only the data directory belongs to the broker's user.
COPY --from=build /app/ ./
RUN mkdir -p data keystore && chown node:node data

USER node
VOLUME /app/data
EXPOSE 8885 9995 8883 9443 8922

# Asks /health where the broker serves it (same flags, environment and file as the broker).
# --allow-all because Deno grants reading another process's /proc/1/cmdline only with it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["deno", "run", "--cached-only", "--allow-all", "scripts/docker/healthcheck.ts"]

# Same permissions as the `start` task in deno.json. --cached-only: everything was fetched and
# compiled at build, and a start must not reach out to the npm registry (Deno otherwise asks it for
# package metadata). Deno is PID 1 and handles SIGTERM itself, so `docker stop` is clean.
ENTRYPOINT ["deno", "run", "--cached-only", "--v8-flags=--max-semi-space-size=4", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run", "main.ts"]
