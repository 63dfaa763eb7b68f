"""Eclipse Paho (Python) MQTTv5: subscription options, Subscription Identifiers and User
Properties, as one JSON line of findings.

Usage: paho5_subscribe.py HOST PORT PREFIX
Every wait is bounded; a run that cannot finish reports what it saw instead of hanging.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

HOST, PORT, PREFIX = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TIMEOUT = 5.0
# Only where absence is what is checked: how long a message that must not come is waited for.
QUIET = 0.3


class Peer:
    """A paho MQTT 5.0 client with its network loop in a thread."""

    def __init__(self, client_id):
        self.connected = threading.Event()
        self.acked = threading.Event()
        self.codes = None
        self.messages = []
        self.lock = threading.Condition()
        self.c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.on_connect = lambda *_a: self.connected.set()
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = self._on_message

    def _on_subscribe(self, _c, _u, _mid, codes, _props):
        self.codes = [c.value for c in codes]
        self.acked.set()

    def _on_message(self, _c, _u, m):
        props = m.properties.json() if m.properties else {}
        with self.lock:
            self.messages.append({
                "topic": m.topic,
                "payload": m.payload.decode(),
                "retain": bool(m.retain),
                "ids": props.get("SubscriptionIdentifier", []),
                "user": props.get("UserProperty", []),
            })
            self.lock.notify_all()

    def connect(self):
        self.c.connect(HOST, PORT, keepalive=30, clean_start=True)
        self.c.loop_start()
        if not self.connected.wait(TIMEOUT):
            raise RuntimeError("no CONNACK")
        return self

    def subscribe(self, topic, sub_id=None, **opts):
        props = None
        if sub_id is not None:
            props = Properties(PacketTypes.SUBSCRIBE)
            props.SubscriptionIdentifier = sub_id
        self.acked.clear()
        self.c.subscribe(topic, options=SubscribeOptions(qos=1, **opts), properties=props)
        if not self.acked.wait(TIMEOUT):
            raise RuntimeError("no SUBACK")
        return self.codes

    def publish(self, topic, payload, retain=False, user=None):
        props = None
        if user:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = user
        info = self.c.publish(topic, payload, qos=1, retain=retain, properties=props)
        info.wait_for_publish(TIMEOUT)
        return info.is_published()

    def take(self, n, wait=TIMEOUT):
        """The first n messages (fewer if they do not come in time), removed."""
        end = time.time() + wait
        with self.lock:
            while len(self.messages) < n and time.time() < end:
                self.lock.wait(0.05)
            got, self.messages = self.messages[:n], self.messages[n:]
            return got

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


def run():
    out = {}
    pub = Peer(f"{PREFIX}-p").connect()
    user = [("a", "1"), ("b", "2"), ("a", "3")]
    out["retained_published"] = [
        pub.publish(f"{PREFIX}/r", "kept", retain=True, user=user),
        pub.publish(f"{PREFIX}/h", "hidden", retain=True),
    ]
    s = Peer(f"{PREFIX}-s").connect()
    # Retain Handling 0 with Retain As Published and No Local, Subscription Identifier 7.
    out["granted"] = [
        s.subscribe(f"{PREFIX}/r", 7, noLocal=True, retainAsPublished=True, retainHandling=0)
    ]
    out["retained"] = s.take(1)
    # Retain Handling 1 on an existing subscription: no retained message; the id becomes 8.
    out["granted"].append(
        s.subscribe(f"{PREFIX}/r", 8, noLocal=True, retainAsPublished=True, retainHandling=1)
    )
    # Retain Handling 2: never a retained message.
    out["granted"].append(s.subscribe(f"{PREFIX}/h", None, retainHandling=2))
    out["no_retained"] = s.take(1, QUIET)
    # No Local: its own message is not sent back; another client's is, with both ids where a
    # second subscription (id 9) also matches, and RETAIN kept (Retain As Published).
    out["granted"].append(
        s.subscribe(f"{PREFIX}/+", 9, noLocal=True, retainAsPublished=True, retainHandling=2)
    )
    s.publish(f"{PREFIX}/r", "own")
    pub.publish(f"{PREFIX}/r", "live", retain=True, user=[("z", "last"), ("z", "last")])
    # "live" comes; "own" must not (a short window, where absence is what is checked).
    out["live"] = s.take(1) + s.take(1, QUIET)
    s2 = Peer(f"{PREFIX}-s2").connect()
    s2.subscribe(f"{PREFIX}/x")  # no options: RETAIN cleared on live messages
    pub.publish(f"{PREFIX}/x", "plain", retain=True)
    out["plain"] = s2.take(1)
    for p in (s, s2, pub):
        p.disconnect()
    return out


def main():
    try:
        out = run()
    except Exception as e:  # reported, not hidden: the Deno test fails on "error"
        out = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(out), flush=True)


main()
