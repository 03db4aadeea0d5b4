"""The line's own I/O: results to MQTT, state over OPC UA, a reject pulse over Modbus, metrics for Prometheus.

An extension (see ``inspect/extensions.py``): ``add_options`` adds the options, ``make_sinks`` turns them into
sinks (every option checked here, before the first frame, each error one line naming the option), ``mount``
adds ``GET /metrics`` to the runtime's app. Light to import: ``--help`` loads it, so the client libraries
(paho-mqtt, asyncua, pymodbus, prometheus-client) are imported only by the sinks that use them.

``bind(runtime)`` hands the runtime's status to the sinks that show it (OPC UA's counters, state and model);
``mount`` calls it, and a caller running without HTTP calls it after ``build_runtime``.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
from pathlib import Path

PASSWORD_ENV = "PCB_INSPECT_MQTT_PASSWORD"
VERDICTS = ("PASS", "FAIL", "REVIEW", "ERROR")


def add_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("line I/O", "results to MQTT, state over OPC UA, a reject pulse over "
                                  "Modbus; GET /metrics is on the HTTP app whenever --http is on")
    g.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish each inspection as JSON (QoS 1) on "
                   "pcb-inspect/STATION/inspections and the station's online/offline on .../status "
                   "(retained); port 1883, or 8883 with TLS, when omitted")
    g.add_argument("--mqtt-user", metavar="NAME", help="MQTT username; the password comes from the "
                   "environment")
    g.add_argument("--mqtt-password-env", metavar="VAR", help="environment variable holding the MQTT "
                   f"password (default {PASSWORD_ENV}); a password is never given on the command line")
    g.add_argument("--mqtt-tls", action="store_true", help="MQTT over TLS, trusting the system's CAs "
                   "(implied by --mqtt-ca)")
    g.add_argument("--mqtt-ca", metavar="FILE", help="MQTT over TLS, trusting this CA certificate (PEM)")
    g.add_argument("--mqtt-cert", metavar="FILE", help="client certificate for MQTT over TLS (PEM)")
    g.add_argument("--mqtt-key", metavar="FILE", help="the client certificate's private key (PEM)")
    g.add_argument("--mqtt-client-id", metavar="ID", help="the persistent session's client id (default "
                   "pcb-inspect-STATION)")
    g.add_argument("--mqtt-buffer", metavar="N", default="10000", help="inspections kept while the broker "
                   "is away (default 10000); beyond it the oldest are dropped and counted")
    g.add_argument("--opcua", metavar="PORT", help="serve the station's state over OPC UA on this port "
                   "(4840 is the usual one)")
    g.add_argument("--opcua-host", metavar="ADDR", default="127.0.0.1", help="address the OPC UA server "
                   "binds (default 127.0.0.1; 0.0.0.0 for every interface)")
    g.add_argument("--modbus", metavar="HOST:PORT[:COIL]", help="pulse a coil on this Modbus TCP PLC for "
                   "each rejected board (coil 0 when omitted)")
    g.add_argument("--modbus-pulse-ms", metavar="MS", default="200", help="how long the reject coil stays "
                   "on (default 200)")
    g.add_argument("--modbus-unit", metavar="ID", default="1", help="the PLC's Modbus unit id (default 1)")
    g.add_argument("--modbus-max-age-s", metavar="S", default="5", help="a rejected board captured longer "
                   "ago than this (the PLC was away) is not pulsed any more, so no late pulse hits the "
                   "wrong board (default 5)")
    g.add_argument("--modbus-on", metavar="VERDICTS", default="FAIL", help="comma-separated verdicts that "
                   "pulse the coil (default FAIL; e.g. FAIL,REVIEW)")


def make_sinks(args: argparse.Namespace) -> list:
    """The sinks the options ask for, each checked and built; the metrics sink whenever HTTP is on."""
    sinks = []
    station = _station(args)
    if getattr(args, "mqtt", None):
        sinks.append(_mqtt(args, station))
    if getattr(args, "opcua", None):
        sinks.append(_opcua(args, station))
    if getattr(args, "modbus", None):
        sinks.append(_modbus(args))
    if str(getattr(args, "http", "off")).lower() != "off":
        from pcb_inspect.inspect.prometheus import MetricsSink

        sinks.append(MetricsSink())
    return sinks


def bind(runtime) -> None:  # noqa: ANN001 - the Runtime
    """Give the sinks that show the line's state the runtime's ``status`` (OPC UA)."""
    for sink in runtime.sinks:
        attach = getattr(sink, "attach_status", None)
        if attach is not None:
            attach(runtime.status)


def mount(app, runtime, args: argparse.Namespace) -> None:  # noqa: ANN001
    """``GET /metrics``, counted by this runtime's metrics sink."""
    from pcb_inspect.inspect.prometheus import MetricsSink, mount_metrics

    bind(runtime)
    sink = next((s for s in runtime.sinks if isinstance(s, MetricsSink)), None)
    mount_metrics(app, runtime, sink)


# -- checking the options ------------------------------------------------------------------------------------


def _error(option: str, value: object, what: str) -> Exception:
    from pcb_inspect.inspect.errors import ConfigError

    return ConfigError(f"{option} {str(value)!r}: {what}")


def _station(args: argparse.Namespace) -> str:
    """The station's name as the runtime will have it (RunConfig: the host name; the demo: 'demo')."""
    station = getattr(args, "station", "") or ""
    if station:
        return station
    return "demo" if getattr(args, "verb", "") == "demo" else socket.gethostname()


def _number(option: str, text: object, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise _error(option, text, "not a whole number") from None
    if not low <= value <= high:
        raise _error(option, text, f"not in {low}..{high}")
    return value


def _host_port(option: str, text: str, default_port: int | None,
               extra: int = 0) -> tuple[str, int, list[str]]:
    """``HOST[:PORT]`` (``[v6]:PORT``) and up to ``extra`` more ``:FIELD``s after the port."""
    text = str(text).strip()
    example = f"need HOST{':PORT' if default_port is None else '[:PORT]'}{'[:COIL]' if extra else ''}"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not host or (rest and not rest.startswith(":")):
            raise _error(option, text, example)
        fields = rest[1:].split(":") if rest else []
    else:
        host, *fields = text.split(":")
    if not host or any(c.isspace() for c in host) or len(fields) > 1 + extra:
        raise _error(option, text, example + (", IPv6 in brackets" if len(fields) > 1 + extra else ""))
    if not fields:
        if default_port is None:
            raise _error(option, text, example)
        return host, default_port, []
    port_text = fields[0]
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise _error(option, text, f"port {port_text!r} is not a number in 1..65535")
    return host, int(port_text), fields[1:]


def _file(option: str, path: str | None) -> Path | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        raise _error(option, path, "no such file")
    if not os.access(p, os.R_OK):
        raise _error(option, path, "not readable")
    return p


def _mqtt(args: argparse.Namespace, station: str):  # noqa: ANN202
    from pcb_inspect.inspect.sinks.mqtt import _BAD_TOPIC_CHARS, MqttSink

    ca, cert = _file("--mqtt-ca", args.mqtt_ca), _file("--mqtt-cert", args.mqtt_cert)
    key = _file("--mqtt-key", args.mqtt_key)
    if key is not None and cert is None:
        raise _error("--mqtt-key", args.mqtt_key, "needs --mqtt-cert (the certificate it belongs to)")
    tls = bool(args.mqtt_tls or ca or cert)
    host, port, _ = _host_port("--mqtt", args.mqtt, 8883 if tls else 1883)
    if _BAD_TOPIC_CHARS & set(station):
        raise _error("--station", station, "used as an MQTT topic level: no '/', '+' or '#'")
    env = args.mqtt_password_env or PASSWORD_ENV
    password = os.environ.get(env, "")
    if args.mqtt_password_env and env not in os.environ:
        raise _error("--mqtt-password-env", env, "no such environment variable is set")
    if args.mqtt_password_env and not args.mqtt_user:
        raise _error("--mqtt-password-env", env, "a password needs --mqtt-user")
    buffer = _number("--mqtt-buffer", args.mqtt_buffer, 1, 10_000_000)
    return MqttSink(host, port, station=station, client_id=args.mqtt_client_id or "", tls=tls,
                    username=args.mqtt_user or "", password=password if args.mqtt_user else "",
                    ca_file=ca, cert_file=cert, key_file=key, queue_size=buffer)


def _opcua(args: argparse.Namespace, station: str):  # noqa: ANN202
    from pcb_inspect.inspect.sinks.opcua import OpcUaSink

    port = _number("--opcua", args.opcua, 1, 65535)
    host = str(args.opcua_host).strip().strip("[]")
    _check_free("--opcua", args.opcua, host, port)
    return OpcUaSink(port, host, station=station)


def _check_free(option: str, value: str, host: str, port: int) -> None:
    """Bind and release, so a port in use or a foreign address is found before the first frame."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise _error("--opcua-host", host, f"cannot resolve ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            what = "already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise _error(option, value, f"cannot listen on {host}:{port}: {what}") from None


def _modbus(args: argparse.Namespace):  # noqa: ANN202
    from pcb_inspect.inspect.sinks.modbus import ModbusSink

    host, port, rest = _host_port("--modbus", args.modbus, None, extra=1)
    coil = 0
    if rest:
        if not rest[0].isdigit() or not 0 <= int(rest[0]) <= 65535:
            raise _error("--modbus", args.modbus, f"coil {rest[0]!r} is not a number in 0..65535")
        coil = int(rest[0])
    pulse = _number("--modbus-pulse-ms", args.modbus_pulse_ms, 1, 60_000)
    unit = _number("--modbus-unit", args.modbus_unit, 0, 247)
    verdicts = [v.strip().upper() for v in str(args.modbus_on).split(",") if v.strip()]
    bad = [v for v in verdicts if v not in VERDICTS]
    if bad or not verdicts:
        raise _error("--modbus-on", args.modbus_on,
                     f"need comma-separated verdicts from {', '.join(VERDICTS)}")
    try:
        max_age = float(args.modbus_max_age_s)
    except ValueError:
        raise _error("--modbus-max-age-s", args.modbus_max_age_s, "not a number") from None
    if not 0 < max_age <= 3600:  # also refuses nan
        raise _error("--modbus-max-age-s", args.modbus_max_age_s, "not in (0, 3600] seconds")
    return ModbusSink(host, port, coil, unit=unit, pulse_ms=pulse, verdicts=verdicts, max_age_s=max_age)
