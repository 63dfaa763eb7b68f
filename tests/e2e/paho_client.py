"""Eclipse Paho (Python) against the broker: one scenario per run, its findings as one JSON line.

Usage: paho_client.py SCENARIO HOST PORT PREFIX PROTOCOL(31|311)
Every wait is bounded; a scenario that cannot finish reports what it saw instead of hanging.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt

SCENARIO, HOST, PORT, PREFIX, PROTO = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
PROTOCOL = mqtt.MQTTv31 if PROTO == "31" else mqtt.MQTTv311
TIMEOUT = 5.0


class Peer:
    """A paho client with its network loop in a thread, recording what it receives."""

    def __init__(self, client_id, clean=True, will=None):
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.flags = {}
        self.rc = None
        self.granted = None
        self.messages = []
        self.lock = threading.Condition()
        self.c = mqtt.Client(client_id=client_id, clean_session=clean, protocol=PROTOCOL)
        if will:
            self.c.will_set(will[0], will[1], qos=1, retain=False)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message

    def _on_connect(self, _c, _u, flags, rc):
        self.flags, self.rc = flags, rc
        self.connected.set()

    def _on_subscribe(self, _c, _u, _mid, granted):
        self.granted = list(granted)
        self.subscribed.set()

    def _on_message(self, _c, _u, m):
        with self.lock:
            self.messages.append(
                {"topic": m.topic, "payload": m.payload.decode(), "qos": m.qos, "retain": bool(m.retain)}
            )
            self.lock.notify_all()

    def connect(self):
        self.c.connect(HOST, PORT, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(TIMEOUT):
            raise RuntimeError("no CONNACK")
        return self

    def subscribe(self, topic, qos):
        self.subscribed.clear()
        self.c.subscribe(topic, qos)
        if not self.subscribed.wait(TIMEOUT):
            raise RuntimeError("no SUBACK")
        return self.granted

    def publish(self, topic, payload, qos, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(TIMEOUT)
        return info.is_published()

    def wait_for(self, n):
        end = time.time() + TIMEOUT
        with self.lock:
            while len(self.messages) < n and time.time() < end:
                self.lock.wait(0.05)
            return list(self.messages)

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """Vanishes without DISCONNECT, so the will is due."""
        self.c.loop_stop()
        self.c.socket().close()


def qos_levels():
    topic = f"{PREFIX}/qos"
    sub = Peer(f"{PREFIX}-s").connect()
    granted = sub.subscribe(f"{PREFIX}/#", 2)
    pub = Peer(f"{PREFIX}-p").connect()
    # A publish is only "published" once its flow completed: PUBACK for 1, PUBCOMP for 2.
    done = [pub.publish(topic, f"q{q}", q) for q in (0, 1, 2)]
    got = sub.wait_for(3)
    pub.disconnect()
    sub.disconnect()
    return {"granted": granted, "completed": done, "received": got}


def retained_and_will():
    pub = Peer(f"{PREFIX}-p").connect()
    pub.publish(f"{PREFIX}/r", "kept", 1, retain=True)
    watcher = Peer(f"{PREFIX}-w").connect()
    watcher.subscribe(f"{PREFIX}/#", 1)
    retained = watcher.wait_for(1)
    doomed = Peer(f"{PREFIX}-d", will=(f"{PREFIX}/will", "gone")).connect()
    doomed.drop()
    after = watcher.wait_for(2)
    pub.publish(f"{PREFIX}/r", "", 1, retain=True)
    pub.disconnect()
    watcher.disconnect()
    return {"retained": retained, "all": after}


def persistent_session():
    first = Peer(f"{PREFIX}-ps", clean=False).connect()
    first_present = first.flags.get("session present")
    first.subscribe(f"{PREFIX}/q", 1)
    first.disconnect()
    pub = Peer(f"{PREFIX}-p").connect()
    done = [pub.publish(f"{PREFIX}/q", f"m{i}", 1) for i in range(3)]
    pub.disconnect()
    again = Peer(f"{PREFIX}-ps", clean=False).connect()
    got = again.wait_for(3)
    present = again.flags.get("session present")
    again.disconnect()
    # Leave no session behind.
    Peer(f"{PREFIX}-ps", clean=True).connect().disconnect()
    return {"firstPresent": first_present, "present": present, "completed": done, "received": got}


def main():
    scenarios = {"qos": qos_levels, "retained-will": retained_and_will, "persistent": persistent_session}
    try:
        out = scenarios[SCENARIO]()
    except Exception as e:  # reported, not hidden: the Deno test fails on "error"
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)


main()
