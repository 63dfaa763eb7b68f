"""Eclipse Paho (Python) 5.0: user properties in order with interleaved repeated names.

Usage: paho5_props.py TRANSPORT SUB_HOST SUB_PORT PUB_HOST PUB_PORT CAFILE PREFIX
TRANSPORT is tcp, tls or ws; CAFILE is "-" without TLS. A subscriber and a publisher (on other
cluster nodes where the ports differ); probes are published until the subscription is routed,
then one message with every property. Prints what arrived as one JSON line; every wait is bounded.
"""
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

TRANSPORT, SH, SP, PH, PP, CA, PREFIX = sys.argv[1:8]
got = []
cond = threading.Condition()


def make(cid):
    c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5,
                    transport="websockets" if TRANSPORT == "ws" else "tcp")
    if TRANSPORT == "tls":
        c.tls_set(ca_certs=CA)
    return c


def on_message(_c, _u, m):
    with cond:
        got.append(m)
        cond.notify_all()


def wait(pred, timeout=10.0):
    end = time.time() + timeout
    with cond:
        while not pred():
            left = end - time.time()
            if left <= 0:
                return False
            cond.wait(left)
    return True


def main():
    host = "localhost" if TRANSPORT == "tls" else None
    sub = make(PREFIX + "-s")
    sub.on_message = on_message
    sub.connect(host or SH, int(SP))
    sub.loop_start()
    pub = make(PREFIX + "-p")
    pub.connect(host or PH, int(PP))
    pub.loop_start()
    try:
        sub.subscribe(PREFIX + "/#", qos=1)
        for _ in range(100):
            pub.publish(PREFIX + "/probe", b"probe", qos=0)
            if wait(lambda: any(m.topic == PREFIX + "/probe" for m in got), 0.15):
                break
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("a", "1"), ("b", "2"), ("a", "3"), ("a", "1")]
        props.ContentType = "text/plain"
        props.ResponseTopic = "paho/reply"
        props.CorrelationData = bytes([0, 0xFF, 0x10])
        props.PayloadFormatIndicator = 1
        pub.publish(PREFIX + "/m", b"hello", qos=1, properties=props).wait_for_publish(10)
        if not wait(lambda: any(m.topic == PREFIX + "/m" for m in got)):
            print(json.dumps({"error": "no message; got %s" % [m.topic for m in got]}))
            return
        m = next(m for m in got if m.topic == PREFIX + "/m")
        p = m.properties
        print(json.dumps({
            "userProperty": [list(kv) for kv in getattr(p, "UserProperty", [])],
            "contentType": getattr(p, "ContentType", None),
            "responseTopic": getattr(p, "ResponseTopic", None),
            "payloadFormatIndicator": getattr(p, "PayloadFormatIndicator", None),
            "correlationData": getattr(p, "CorrelationData", b"").hex(),
        }))
    finally:
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()


main()
