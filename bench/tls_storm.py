#!/usr/bin/env python3
"""A TLS handshake storm for the `-storm` latency scenario (bench/scenarios_more.ts startStorm).

Deno's TLS client spends more CPU per handshake than the broker does, so from Deno the storm got
only 700-1,200 of 5,000 clients in on a 2-core machine; OpenSSL (Python's ssl) does not.

  python3 bench/tls_storm.py HOST PORT CAFILE COUNT CONCURRENCY PREFIX

Opens COUNT TLS connections (CONCURRENCY threads, full handshakes), each sending an MQTT 3.1.1
CONNECT and waiting for CONNACK 0, and keeps them idle. Prints "connected N failed F seconds S"
once every connection was tried, then holds them until stdin has a line or closes.
"""
import socket
import ssl
import sys
import threading

from tls_pool import mqtt_connect, run_pool


def main() -> None:
    host, port, cafile, count, conc, prefix = sys.argv[1:7]
    port, n, conc = int(port), int(count), int(conc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    lock = threading.Lock()
    conns = []

    def one(i: int) -> None:
        raw = socket.create_connection((host, port), timeout=60)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        mqtt_connect(s, f"{prefix}-{i}")
        with lock:
            conns.append(s)

    failed, first, secs = run_pool(n, conc, one)
    print(f"connected {len(conns)} failed {failed} seconds {secs:.2f}", flush=True)
    if first:
        print(f"tls_storm.py: first error: {first}", file=sys.stderr)
    sys.stdin.readline()
    for s in conns:
        try:
            s.close()
        except OSError:
            pass


main()
