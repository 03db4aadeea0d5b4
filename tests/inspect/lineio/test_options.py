"""The line I/O options: each mistake one line naming the option, found before the first frame (also through
the real console script); the sinks they ask for; the client libraries loaded only when used."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pcb_inspect.inspect import lineio
from pcb_inspect.inspect.errors import ConfigError

BAD = [
    (["--modbus", "plc:99999"], "--modbus 'plc:99999': port '99999' is not a number in 1..65535"),
    (["--modbus", "plc"], "--modbus 'plc': need HOST:PORT[:COIL]"),
    (["--modbus", "plc:502:x"], "--modbus 'plc:502:x': coil 'x' is not a number in 0..65535"),
    (["--modbus", "plc:502:1:2"], "--modbus 'plc:502:1:2': need HOST:PORT[:COIL], IPv6 in brackets"),
    (["--modbus", "plc:502", "--modbus-pulse-ms", "0"], "--modbus-pulse-ms '0': not in 1..60000"),
    (["--modbus", "plc:502", "--modbus-unit", "300"], "--modbus-unit '300': not in 0..247"),
    (["--modbus", "plc:502", "--modbus-on", "FAIL,MAYBE"], "--modbus-on 'FAIL,MAYBE': need comma-separated"),
    (["--modbus", "plc:502", "--modbus-max-age-s", "nan"], "--modbus-max-age-s 'nan': not in (0, 3600]"),
    (["--mqtt", "broker:0"], "--mqtt 'broker:0': port '0' is not a number in 1..65535"),
    (["--mqtt", "broker:1883", "--mqtt-ca", "/no/such/ca.pem"], "--mqtt-ca '/no/such/ca.pem': no such file"),
    (["--mqtt", "broker", "--mqtt-buffer", "lots"], "--mqtt-buffer 'lots': not a whole number"),
    (["--mqtt", "broker", "--mqtt-password-env", "PCB_TEST_NOT_SET"],
     "--mqtt-password-env 'PCB_TEST_NOT_SET': no such environment variable is set"),
    (["--mqtt", "broker", "--station", "line/1"], "--station 'line/1': used as an MQTT topic level"),
    (["--opcua", "70000"], "--opcua '70000': not in 1..65535"),
    (["--opcua", "4840", "--opcua-host", "no.such.host.invalid"],
     "--opcua-host 'no.such.host.invalid': cannot resolve"),
]


@pytest.mark.parametrize(("argv", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_each_mistake_is_one_line_naming_the_option(argv: list[str], message: str, kit) -> None:
    args = kit.line_args("--http", "off", *argv)
    with pytest.raises(ConfigError) as info:
        lineio.make_sinks(args)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_a_port_in_use_is_found_before_the_run(kit) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = kit.line_args("--http", "off", "--opcua", str(port))
        message = rf"--opcua '{port}': cannot listen on 127.0.0.1:{port}: already in use"
        with pytest.raises(ConfigError, match=message):
            lineio.make_sinks(args)


def test_the_sinks_the_options_ask_for(tmp_path: Path, kit, monkeypatch) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    key.write_text("x")
    cert.write_text("x")
    monkeypatch.setenv(lineio.PASSWORD_ENV, "from-env")
    args = kit.line_args("--station", "L1", "--http", "127.0.0.1:0", "--mqtt", "[::1]",
                         "--mqtt-cert", str(cert),
                         "--mqtt-key", str(key), "--mqtt-user", "u", "--opcua", str(kit.free_port()),
                         "--modbus", "10.0.0.5:1502:12", "--modbus-on", "fail,review",
                         "--modbus-pulse-ms", "50")
    mqtt, opcua, plc, metrics = lineio.make_sinks(args)
    assert (mqtt.name, opcua.name, plc.name, metrics.name) == ("mqtt", "opcua", "modbus", "metrics")
    assert (mqtt.host, mqtt.port, mqtt.tls, mqtt.topic) == ("::1", 8883, True, "pcb-inspect/L1/inspections")
    assert mqtt.username == "u" and mqtt.client_id == "pcb-inspect-L1" and mqtt.queue_size == 10000
    assert "from-env" not in str(mqtt.status())
    assert (opcua.host, opcua.station) == ("127.0.0.1", "L1")
    assert (plc.host, plc.port, plc.coil, plc.pulse_s, sorted(plc.verdicts)) == ("10.0.0.5", 1502, 12, 0.05,
                                                                                 ["FAIL", "REVIEW"])
    assert lineio.make_sinks(kit.line_args("--http", "off")) == []  # nothing asked, nothing made
    demo = kit.line_args("--http", "off", "--mqtt", "b")
    demo.verb = "demo"
    assert lineio.make_sinks(demo)[0].station == "demo"  # as the demo's RunConfig names it


def test_help_lists_the_options_and_loads_no_client_library() -> None:
    code = ("import sys, argparse; from pcb_inspect.inspect import lineio; p = argparse.ArgumentParser(); "
            "lineio.add_options(p); h = p.format_help(); "
            "libs = ('paho', 'asyncua', 'pymodbus', 'prometheus_client'); "
            "print(sorted(m for m in libs if m in sys.modules)); "
            "print(h)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "[]"
    for option in ("--mqtt ", "--mqtt-password-env", "--mqtt-ca", "--opcua ", "--opcua-host", "--modbus ",
                   "--modbus-pulse-ms", "--modbus-unit"):
        assert option in out


def test_the_console_script_says_it_in_one_line_before_loading_a_model(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("pcb-inspect")
    argv = [str(exe), "run", "--source", "synthetic://", "--http", "off", "--db", str(tmp_path / "r.db"),
            "--modbus", "plc:99999"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("pcb-inspect run: error: --modbus 'plc:99999': port '99999' is not a number "
                                "in 1..65535")
