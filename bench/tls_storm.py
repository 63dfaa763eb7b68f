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
import time


def connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x00"  # level 4, clean session, keepalive 0
    payload = len(cid).to_bytes(2, "big") + cid
    rem = len(var) + len(payload)
    return bytes([0x10, rem]) + var + payload  # rem < 128 for the ids used here


def main() -> None:
    host, port, cafile, count, conc, prefix = sys.argv[1:7]
    port, n, conc = int(port), int(count), int(conc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cafile)
    lock = threading.Lock()
    state = {"next": 0, "failed": 0, "first": ""}
    conns = []

    def one(i: int) -> None:
        raw = socket.create_connection((host, port), timeout=60)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(connect_packet(f"{prefix}-{i}"))
        got = b""
        while len(got) < 4:
            chunk = s.recv(4 - len(got))
            if not chunk:
                raise RuntimeError("closed before CONNACK")
            got += chunk
        if got[0] != 0x20 or got[3] != 0:
            raise RuntimeError(f"CONNACK code {got[3]}")
        with lock:
            conns.append(s)

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            try:
                one(i)
            except Exception as err:  # noqa: BLE001 - counted and reported
                with lock:
                    state["failed"] += 1
                    state["first"] = state["first"] or repr(err)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(conc)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.perf_counter() - t0
    print(f"connected {len(conns)} failed {state['failed']} seconds {secs:.2f}", flush=True)
    if state["first"]:
        print(f"tls_storm.py: first error: {state['first']}", file=sys.stderr)
    sys.stdin.readline()
    for s in conns:
        try:
            s.close()
        except OSError:
            pass


main()
