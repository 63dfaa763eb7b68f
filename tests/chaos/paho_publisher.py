"""A numbering Eclipse Paho publisher for the chaos suite (see driver.ts, PahoPublisher).

Usage: paho_publisher.py HOST PORT CLIENT_ID QOS

Publishes "<client_id>:<seq>" to chaos/<client_id> at full speed over a persistent session
(clean_session=False), at most 20 in flight and 200 queued in Paho, reconnecting by itself and
re-sending what is unacknowledged, as Paho does. Prints "A seq,seq,..." lines for the messages
Paho reports published (PUBACK, or PUBCOMP for QoS 2). A line "stop" on stdin stops new
publishes; once everything is acknowledged it prints "DONE" and exits.
"""
import collections
import sys
import threading
import time

import paho.mqtt.client as mqtt

host, port, cid, qos = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
mids = {}
# Filled by Paho's thread (which holds Paho's own locks then), emptied by the main thread.
acked_mids = collections.deque()
stopping = threading.Event()

c = mqtt.Client(client_id=cid, clean_session=False, protocol=mqtt.MQTTv311)
c.max_inflight_messages_set(20)
c.reconnect_delay_set(min_delay=1, max_delay=1)
c.on_disconnect = lambda _c, _u, rc: sys.stderr.write("paho %s disconnected rc=%s t=%d\n" % (cid, rc, int(time.time() * 1000) % 1000000))
c.on_connect = lambda _c, _u, f, rc: sys.stderr.write("paho %s connected rc=%s %s t=%d\n" % (cid, rc, f, int(time.time() * 1000) % 1000000))


def on_publish(_c, _u, mid):
    acked_mids.append(mid)


c.on_publish = on_publish
if len(sys.argv) > 5:
    logf = open(sys.argv[5], "w")
    c.on_log = lambda _c, _u, _l, buf: logf.write("%d %s\n" % (int(time.time() * 1000) % 1000000, buf))


def reader():
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stopping.set()


threading.Thread(target=reader, daemon=True).start()
while True:
    try:
        c.connect(host, port, keepalive=10)
        break
    except OSError:
        time.sleep(0.1)
c.loop_start()

seq = 0
while True:
    if not stopping.is_set() and len(mids) < 200:
        info = c.publish("chaos/" + cid, "%s:%d" % (cid, seq), qos=qos)
        mids[info.mid] = seq
        if len(sys.argv) > 5:
            logf.write("seq %d mid %d\n" % (seq, info.mid))
        seq += 1
        continue
    batch = []
    while acked_mids:
        s = mids.pop(acked_mids.popleft(), None)
        if s is not None:
            batch.append(s)
    done = stopping.is_set() and not mids
    if batch:
        sys.stdout.write("A " + ",".join(map(str, batch)) + "\n")
        sys.stdout.flush()
    if done:
        break
    time.sleep(0.002)
c.disconnect()
c.loop_stop()
print("DONE", flush=True)
