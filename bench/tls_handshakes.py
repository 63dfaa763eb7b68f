#!/usr/bin/env python3
"""TLS handshake load for the tls-hs-* scenarios (bench/scenarios_more.ts runHandshakes).

Deno's node:tls client never resumes a session (it ignores `session`, so isSessionReused() is
always false, against Mosquitto as against MqttWk), which made the -resume scenarios measure full
handshakes. Python's ssl module (OpenSSL) does resume, TLS 1.2 by session id or ticket and
TLS 1.3 by ticket, so the handshakes are driven from here.

  python3 bench/tls_handshakes.py HOST PORT CAFILE TLSv1.3|TLSv1.2 N CONCURRENCY RESUME(0|1) PREFIX

Each connection: TCP connect, TLS handshake (version pinned), MQTT 3.1.1 CONNECT (keepalive 0,
clean session), CONNACK, close. 20 warm-up connections first (not counted; the last one's session
is the first to offer), then "ready"; the counted run starts on a line on stdin and ends with one
JSON line: handshakes, failed, reused, seconds, firstError.
"""
import json
import socket
import ssl
import sys
import threading

from tls_pool import mqtt_connect, run_pool


def main() -> None:
    host, port, cafile, version, n, conc, resume, prefix = sys.argv[1:9]
    port, n, conc, resume = int(port), int(n), int(conc), resume == "1"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    v = ssl.TLSVersion.TLSv1_3 if version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = v
    ctx.maximum_version = v
    lock = threading.Lock()
    state = {"session": None, "reused": 0}

    def one(cid: str, count: bool) -> None:
        sess = state["session"] if resume else None
        with socket.create_connection((host, port), timeout=30) as raw:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with ctx.wrap_socket(raw, server_hostname="localhost", session=sess) as s:
                mqtt_connect(s, cid)
                # A TLS 1.3 ticket arrives after the handshake; the read above processed it.
                with lock:
                    if count and s.session_reused:
                        state["reused"] += 1
                    if resume and s.session is not None:
                        state["session"] = s.session

    for i in range(20):
        try:
            one(f"{prefix}w{i}", False)
        except Exception:  # noqa: BLE001 - warm-up failures show up in the counted run
            pass

    # The caller starts its CPU window, then says go.
    print("ready", flush=True)
    sys.stdin.readline()

    failed, first, secs = run_pool(n, conc, lambda i: one(f"{prefix}h{i}", True))
    print(json.dumps({
        "handshakes": n - failed,
        "failed": failed,
        "reused": state["reused"],
        "seconds": secs,
        "firstError": first,
    }))


main()
