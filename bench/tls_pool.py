"""What the Python TLS load generators share (tls_handshakes.py, tls_storm.py): an MQTT 3.1.1
CONNECT and a pool of threads that runs one job per index."""
import threading
import time
from typing import Callable


def connect_packet(client_id: str) -> bytes:
    """CONNECT, level 4, clean session, keepalive 0."""
    cid = client_id.encode()
    var = b"\x00\x04MQTT\x04\x02\x00\x00"
    payload = len(cid).to_bytes(2, "big") + cid
    rem = len(var) + len(payload)
    out = bytearray([0x10])
    while True:
        b = rem % 128
        rem //= 128
        out.append(b | (0x80 if rem else 0))
        if not rem:
            break
    return bytes(out) + var + payload


def mqtt_connect(s, client_id: str) -> None:
    """Sends CONNECT on socket `s` and waits for CONNACK 0 (raises otherwise)."""
    s.sendall(connect_packet(client_id))
    got = b""
    while len(got) < 4:
        chunk = s.recv(4 - len(got))
        if not chunk:
            raise RuntimeError("closed before CONNACK")
        got += chunk
    if got[0] != 0x20 or got[3] != 0:
        raise RuntimeError(f"CONNACK code {got[3]}")


def run_pool(n: int, conc: int, job: Callable[[int], None]) -> tuple[int, str, float]:
    """Runs job(0..n-1) on `conc` threads; returns (failed, first error, seconds)."""
    lock = threading.Lock()
    state = {"next": 0, "failed": 0, "first": ""}

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                return
            try:
                job(i)
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
    return state["failed"], state["first"], time.perf_counter() - t0
