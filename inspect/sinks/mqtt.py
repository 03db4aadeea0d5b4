"""MQTT: one JSON message per inspection to the plant's broker, QoS 1, nothing lost across a broker restart.

Topics: ``pcb-inspect/<station>/inspections`` carries ``Inspection.to_dict()`` plus ``ts`` (the capture time,
ISO 8601 UTC; ``time`` is the same instant in epoch seconds); ``pcb-inspect/<station>/status`` holds
``online`` or ``offline``, retained, with ``offline`` as the last will, so a broker tells subscribers when the
station vanished without saying goodbye.

What "written" means. The base counts a result written when ``write()`` returns; here that is when the
message is in the client's outgoing queue, **which keeps it until the broker acknowledges it** (PUBACK). One
paho client lives as long as the sink: when the connection drops, paho's network thread reconnects by
itself (with the sink's back-off) and sends every unacknowledged message again, flagged DUP, before
anything new, whether or not new results arrive meanwhile. So a broker that goes away costs the line
nothing: results wait in the base's bounded queue (``queue_size``, the oldest dropped and counted when it
overflows; the loop never waits) plus at most ``window`` unacknowledged messages in the client; ``status()``
reports both in ``backlog``, and ``unacked``, ``acked`` and ``redelivered`` on their own, while the base's
state says ``retrying`` with the reason. QoS 1 is at-least-once: a message whose PUBACK was lost arrives
twice; a subscriber dedupes by the record's ``id`` (32 hex digits, unique per inspection). Only messages
still unacknowledged when the sink closes (after waiting ``drain_s``) are lost; ``status()`` then shows them
as ``unacked``.

The client speaks MQTT 3.1.1 with a persistent session (``clean_session=False``, a fixed client id), so the
broker also keeps what it owes this client across a reconnect. The first connection is made by ``open()``
itself, so a wrong address, a refused login or an untrusted certificate is the sink's ``last_error`` in the
broker's own words.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.sinks.base import Result, Sink, SinkError, one_line

TOPIC_ROOT = "pcb-inspect"
_BAD_TOPIC_CHARS = set("/+#\x00")


def topics(station: str) -> tuple[str, str]:
    """The (inspections, status) topics of a station."""
    return f"{TOPIC_ROOT}/{station}/inspections", f"{TOPIC_ROOT}/{station}/status"


def payload(result: Result) -> bytes:
    """The message for one inspection: its record as JSON plus ``ts``, the capture time in ISO 8601 UTC."""
    record = result.inspection.to_dict()
    record["ts"] = datetime.fromtimestamp(result.inspection.time, UTC).isoformat(timespec="milliseconds")
    return json.dumps(record, separators=(",", ":")).encode()


class MqttSink(Sink):
    """Publishes each inspection to an MQTT broker (paho-mqtt, QoS 1, persistent session).

    Args:
        host, port: the broker.
        station: the station's name, one topic level (no ``/``, ``+`` or ``#``).
        client_id: the persistent session's id (default ``pcb-inspect-<station>``); unique per station.
        username, password: broker credentials (give the password from the environment, never a command line).
        tls: use TLS (implied by ``ca_file``); ``ca_file`` None trusts the system's CAs.
        ca_file, cert_file, key_file: PEM files; a client certificate needs its key (``key_file`` may be
            omitted when the certificate file holds it).
        window: messages published and not yet acknowledged, at most; ``write()`` waits for room.
        ack_timeout_s: with the window full this long (a broker that takes but does not acknowledge), the
            sink reports itself ``retrying`` with the reason and tries again.
        connect_timeout_s: longest wait for the broker's CONNACK.
        drain_s: at close, longest wait for the last acknowledgements.
        keepalive_s: MQTT keep-alive; a silent broker is noticed within about 1.5 times this.
        **options: the queue and retry options of :class:`Sink` (here queue_size defaults to 10000 and
            on_full to drop_oldest: with the broker away and the buffer full the loop never waits).
    """

    name = "mqtt"
    wants_images = "none"

    def __init__(self, host: str, port: int = 1883, *, station: str, client_id: str = "", username: str = "",
                 password: str = "", tls: bool = False, ca_file: str | os.PathLike | None = None,
                 cert_file: str | os.PathLike | None = None, key_file: str | os.PathLike | None = None,
                 window: int = 100, ack_timeout_s: float = 10.0, connect_timeout_s: float = 5.0,
                 drain_s: float = 5.0, keepalive_s: int = 30, **options) -> None:
        options.setdefault("queue_size", 10_000)
        options.setdefault("on_full", "drop_oldest")  # a full buffer costs the oldest message, never the line
        options.setdefault("retry_max_s", 10.0)
        super().__init__(**options)
        if not isinstance(host, str) or not host.strip():
            raise ConfigError("mqtt sink: host is empty")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"mqtt sink: port {port!r} is not in 1..65535")
        if not station or _BAD_TOPIC_CHARS & set(station):
            raise ConfigError(f"mqtt sink: station {station!r} must be one MQTT topic level: not empty, "
                              "no '/', '+' or '#'")
        if password and not username:
            raise ConfigError("mqtt sink: a password needs a username")
        for what, path in (("ca_file", ca_file), ("cert_file", cert_file), ("key_file", key_file)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"mqtt sink: {what} {path}: no such file")
        if key_file is not None and cert_file is None:
            raise ConfigError("mqtt sink: key_file needs cert_file")
        if not 1 <= window <= 10_000:
            raise ConfigError(f"mqtt sink: window {window!r} is not in 1..10000")
        for what, value in (("ack_timeout_s", ack_timeout_s), ("connect_timeout_s", connect_timeout_s),
                            ("keepalive_s", keepalive_s)):
            if not 0 < value <= 3600:
                raise ConfigError(f"mqtt sink: {what} {value!r} must be in (0, 3600]")
        if not 0 <= drain_s <= 300:
            raise ConfigError(f"mqtt sink: drain_s {drain_s!r} must be in [0, 300]")
        self.host, self.port, self.station = host.strip(), port, station
        self.client_id = client_id or f"pcb-inspect-{station}"
        self.username, self._password = username, password
        self.tls = bool(tls or ca_file or cert_file)
        self.ca_file, self.cert_file, self.key_file = ca_file, cert_file, key_file
        self.window, self.ack_timeout_s = int(window), float(ack_timeout_s)
        self.connect_timeout_s, self.drain_s = float(connect_timeout_s), float(drain_s)
        self.keepalive_s = int(keepalive_s)
        self.topic, self.status_topic = topics(station)
        self._client = None  # the paho Client: made by the first open(), kept until close()
        self._unacked: dict[int, bool] = {}  # mid -> is an inspection: published with QoS 1, no PUBACK yet
        self._acked_mids: set[int] = set()  # filled by paho's thread; matched against _unacked
        self._lock = threading.Lock()  # guards the two above; never held while calling paho
        self._ack = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._ever_connected = False
        self._closing = False
        self._connack: str | None = None
        self._lost = ""
        self._acked = self._redelivered = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # -- paho's callbacks (its network thread) -------------------------------------------------------------

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:  # noqa: ANN001
        self._connack = "ok" if not reason_code.is_failure else str(reason_code)
        if reason_code.is_failure:
            return
        if self._ever_connected:  # paho sends what was unacknowledged again, flagged DUP
            with self._ack:
                self._redelivered += self._pending_locked()
        self._ever_connected, self._lost = True, ""
        self._connected.set()
        self._publish(client, self.status_topic, b"online", retain=True, inspection=False)

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:  # noqa: ANN001
        self._connected.clear()
        self._lost = str(reason_code)
        with self._ack:
            self._ack.notify_all()

    def _on_publish(self, _client, _userdata, mid, _reason_code, _properties) -> None:  # noqa: ANN001
        with self._ack:
            self._acked_mids.add(mid)
            self._ack.notify_all()

    # -- the sink --------------------------------------------------------------------------------------------

    def open(self) -> None:
        """Connect the first time (an error here is the broker's own answer); after that paho's network
        thread reconnects by itself, resending what is unacknowledged, and this only waits for it."""
        if self._client is None:
            self._client = self._connect()
        deadline = time.monotonic() + self.connect_timeout_s
        while not self._connected.wait(0.05) and not self._closing and time.monotonic() < deadline:
            pass
        if not self._connected.is_set():
            raise SinkError(f"MQTT broker {self.address}: connection lost ({self._lost or 'no answer'}); "
                            f"reconnecting, {self._pending()} message(s) unacknowledged")

    def _connect(self):  # noqa: ANN202 - a connected paho Client, its network thread running
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                             protocol=mqtt.MQTTv311)
        if self.username:
            client.username_pw_set(self.username, self._password or None)
        if self.tls:
            try:
                client.tls_set(ca_certs=None if self.ca_file is None else str(self.ca_file),
                               certfile=None if self.cert_file is None else str(self.cert_file),
                               keyfile=None if self.key_file is None else str(self.key_file))
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError: a bad PEM, a key that fits not
                raise SinkError(f"MQTT TLS files: {one_line(exc)}", permanent=True) from None
        client.will_set(self.status_topic, b"offline", qos=1, retain=True)
        client.max_inflight_messages_set(self.window + 2)  # the window, plus the status messages
        client.reconnect_delay_set(self.retry_s, self.retry_max_s)
        client.on_connect, client.on_disconnect = self._on_connect, self._on_disconnect
        client.on_publish = self._on_publish
        self._connected.clear()
        self._connack, self._lost = None, ""
        try:
            client.connect(self.host, self.port, keepalive=self.keepalive_s)
        except (OSError, ValueError) as exc:
            raise SinkError(f"MQTT broker {self.address}: {one_line(exc)}") from None
        client.loop_start()
        deadline = time.monotonic() + self.connect_timeout_s
        while not self._connected.wait(0.05):
            if self._connack not in (None, "ok") or self._lost or time.monotonic() > deadline:
                reason = self._connack or self._lost or f"no answer within {self.connect_timeout_s:g} s"
                client.disconnect()
                client.loop_stop()
                raise SinkError(f"MQTT broker {self.address} refused the connection: {reason}")
        return client

    def write(self, result: Result) -> None:
        data = payload(result)
        deadline = time.monotonic() + self.ack_timeout_s
        with self._ack:
            while self._pending_locked() >= self.window and self._connected.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SinkError(f"MQTT broker {self.address}: {self._pending_locked()} messages not "
                                    f"acknowledged within {self.ack_timeout_s:g} s")
                self._ack.wait(min(left, 0.1))
        if not self._connected.is_set():
            raise SinkError(f"MQTT broker {self.address}: connection lost ({self._lost or 'not connected'}); "
                            f"reconnecting, {self._pending()} message(s) unacknowledged")
        self._publish(self._client, self.topic, data)

    def _publish(self, client, topic: str, data: bytes, retain: bool = False,  # noqa: ANN001 - paho Client
                 inspection: bool = True) -> None:
        """Publish with QoS 1 and track the message until its PUBACK. Never raises once paho has it (paho
        keeps it and sends it again after a reconnect), so the base never publishes one result twice."""
        info = client.publish(topic, data, qos=1, retain=retain)
        with self._ack:
            self._unacked[info.mid] = inspection
            self._match_locked()

    def _match_locked(self) -> None:
        """Drop acknowledged messages (a PUBACK may be seen before its publish() returned: keep the mid)."""
        done = self._acked_mids & self._unacked.keys()
        for mid in done:
            if self._unacked.pop(mid):
                self._acked += 1
        self._acked_mids -= done

    def _pending_locked(self) -> int:
        self._match_locked()
        return sum(self._unacked.values())

    def _pending(self) -> int:
        with self._ack:
            return self._pending_locked()

    def close(self, timeout: float = 5.0) -> None:
        self._closing = True  # teardown from now on ends the connection (before, it only meant "retry")
        super().close(timeout)

    def teardown(self) -> None:
        """On close: wait up to ``drain_s`` for the last PUBACKs, say offline, disconnect. Before a retry:
        nothing, since the connection (and what paho keeps for it) must outlive a failed write."""
        client = self._client
        if client is None or not self._closing:
            return
        self._client = None
        if self._connected.is_set():
            deadline = time.monotonic() + self.drain_s
            with self._ack:
                while self._pending_locked() and self._connected.is_set() and time.monotonic() < deadline:
                    self._ack.wait(0.05)
            try:
                info = client.publish(self.status_topic, b"offline", qos=1, retain=True)
                info.wait_for_publish(min(1.0, self.drain_s) or 0.1)
            except (RuntimeError, ValueError):
                pass  # the will says offline for us
        client.disconnect()
        client.loop_stop()
        self._connected.clear()

    def stats(self) -> dict:
        return {"broker": self.address, "connected": self._connected.is_set(), "unacked": self._pending(),
                "acked": self._acked, "redelivered": self._redelivered}

    def status(self) -> dict:
        """The base's status; ``backlog`` also counts the messages the broker has not acknowledged yet."""
        out = super().status()
        out["backlog"] += out["unacked"]
        return out
