# MqttWk broker image. It is meant to be run with host networking, so the broker listens directly
# on the host's ports (MQTT 8885 and WebSocket 9995 unless configured otherwise):
#
#   docker build -t mqttwk .
#   docker run --net=host -v mqttwk-data:/app/data mqttwk [--port 1883 ...]
#
# Arguments after the image name are MqttWk flags (see `--help`); environment variables such as
# `-e MQTTWK_BROKER_PORT=1883` and a mounted file (`-v $PWD/my.yaml:/app/config/application.yaml`)
# work too. No TLS key is baked in: for ssl-enabled, mount one (`-v $PWD/keystore:/app/keystore:ro`).
FROM node:20-bookworm-slim

# Same Deno as development and CI, installed the same way.
RUN npm i -g deno@2.9.6 && deno --version

# Inside /app so that the unprivileged user below owns the cache it may add to at run time.
ENV DENO_DIR=/app/.cache/deno \
    DENO_NO_UPDATE_CHECK=1
WORKDIR /app

# Dependencies before sources, so that editing code does not re-download npm packages.
COPY deno.json deno.loc[k] ./
RUN deno install

COPY main.ts ./
COPY src/ src/
COPY config/ config/
RUN deno cache main.ts \
 && mkdir -p data keystore \
 && chown -R node:node /app

USER node
VOLUME /app/data
EXPOSE 8885 9995 8883 9443 8922

# Same permissions as the `start` task in deno.json.
ENTRYPOINT ["deno", "run", "--v8-flags=--max-semi-space-size=2", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run", "main.ts"]
