"""Connecting a paho MQTT client and waiting for the broker's answer, with one clear error."""

from __future__ import annotations

import threading
from typing import Callable

import paho.mqtt.client as mqtt

CONNECT_TIMEOUT = 10.0


def connect(client: mqtt.Client, host: str, port: int, *, clean_start: bool, properties=None,
            on_connected: Callable[[mqtt.Client], None] | None = None) -> mqtt.Client:
    """Connect, start the network loop and wait for CONNACK; raise ConnectionError naming host:port.

    `on_connected` runs on every successful (re)connect, e.g. to subscribe again.
    """
    connected = threading.Event()
    result: list = []

    def on_connect(client, userdata, flags, reason_code, props):
        result.append(reason_code)
        if on_connected is not None and not reason_code.is_failure:
            on_connected(client)
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=60, clean_start=clean_start, properties=properties)
    except OSError as e:
        raise ConnectionError(f"cannot reach MQTT broker {host}:{port}: {e}") from e
    client.loop_start()
    if not connected.wait(CONNECT_TIMEOUT) or result[0].is_failure:
        client.loop_stop()
        client.disconnect()
        why = result[0] if result else f"no CONNACK within {CONNECT_TIMEOUT:.0f} s"
        raise ConnectionError(f"MQTT broker {host}:{port} refused the connection: {why}")
    return client
