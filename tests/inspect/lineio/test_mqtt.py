"""MQTT against a real Mosquitto: every inspection reaches a persistent-session subscriber across a broker
restart mid-run, results wait (bounded, counted) while the broker is away, the station's retained status and
last will, and TLS with a password from the environment."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.mqtt import MqttSink
from pcb_inspect.inspect.sinks.sqlite import ResultsDB

FAST = {"retry_s": 0.05, "retry_max_s": 0.3}


def test_every_inspection_arrives_once_across_a_broker_restart(tmp_path: Path, broker, kit) -> None:
    b = broker()
    mes = kit.Subscriber(b.port, "pcb-inspect/t/inspections", client_id="mes", persistent=True)
    mqtt = MqttSink("127.0.0.1", b.port, station="t", **FAST)
    config = RunConfig(source="synthetic://?fps=30&boards=4", max_frames=45, workers=1, station="t")
    runtime = build_runtime(config, tmp_path / "r.db", None, (100, 50), extra_sinks=[mqtt])
    summary: dict = {}
    loop = threading.Thread(target=lambda: summary.update(runtime.run()))
    loop.start()
    try:
        kit.wait_for(lambda: mqtt.status()["written"] >= 10, 20, "10 inspections published")
        b.stop()  # mid-run, with the loop still inspecting
        kit.wait_for(lambda: runtime.stats.inspected >= 25, 20, "25 inspections")
        away = mqtt.status()
        assert away["state"] == "retrying" and not away["connected"]
        assert away["backlog"] > 0 and away["dropped"] == 0  # waiting, counted, none lost
        assert "MQTT broker 127.0.0.1" in away["last_error"]
        b.start()  # same port, same persistence folder: the MES's session and its queue survive
    finally:
        loop.join(60)
    assert summary["inspected"] == 45
    stored = {i.id for i in ResultsDB(tmp_path / "r.db").recent(100)}
    kit.wait_for(lambda: {r["id"] for r in mes.records()} >= stored, 20, "every inspection at the subscriber")
    records = mes.records()
    mes.close()
    ids = [r["id"] for r in records]
    # QoS 1 is at-least-once: a message whose PUBACK the restart swallowed comes again; dedupe by id
    assert set(ids) == stored and len(set(ids)) == 45
    status = mqtt.status()
    assert status["written"] == 45 and status["dropped"] == 0 and status["unacked"] == 0
    assert status["acked"] == 45  # one PUBACK per inspection, however often it was sent
    first = records[0]
    for key in ("verdict", "frame_index", "board_id", "defects", "model_sha256", "ts", "time", "id"):
        assert key in first
    assert first["ts"].endswith("+00:00") and first["model_sha256"] == runtime.inspector.backend.model_sha256


def test_messages_the_broker_never_acknowledged_are_published_again(broker, kit) -> None:
    # a broker that hangs (SIGSTOP) with messages in flight, then dies (SIGKILL): no PUBACK ever came for
    # them, so the client sends them again on the next connection; the broker saves sessions as they change
    b = broker("allow_anonymous true\nautosave_interval 1\nautosave_on_changes true")
    mes = kit.Subscriber(b.port, "pcb-inspect/t/inspections", client_id="mes", persistent=True)
    sink = MqttSink("127.0.0.1", b.port, station="t", **FAST)
    sink.start()
    try:
        for k in range(3):
            sink.submit(kit.inspection("PASS", index=k))
        kit.wait_for(lambda: sink.status()["acked"] == 3, 10, "3 acknowledged")
        time.sleep(0.2)  # past the broker's autosave of the subscriber's session
        b.proc.send_signal(signal.SIGSTOP)
        for k in range(3, 7):
            sink.submit(kit.inspection("FAIL", index=k))
        kit.wait_for(lambda: sink.status()["unacked"] == 4, 10, "4 messages in flight")
        s = sink.status()
        assert (s["written"], s["acked"], s["backlog"]) == (7, 3, 4)  # written, yet kept until acknowledged
        b.proc.kill()
        b.proc.wait(5)
        b.proc = None
        b.start()
        kit.wait_for(lambda: sink.status()["acked"] == 7, 10, "the 4 acknowledged after the restart")
        kit.wait_for(lambda: {r["board_id"] for r in mes.records()} == {f"b{k}" for k in range(7)}, 10,
                     "all 7 at the subscriber")
    finally:
        sink.close(5)
        mes.close()
    assert sink.status()["redelivered"] == 4 and sink.status()["unacked"] == 0


def test_results_wait_bounded_and_counted_while_the_broker_is_away(broker, kit) -> None:
    b = broker()
    mes = kit.Subscriber(b.port, "pcb-inspect/t/inspections", client_id="mes", persistent=True)
    b.stop()  # the broker is away when the station starts; the MES's session waits in its persistence file
    sink = MqttSink("127.0.0.1", b.port, station="t", queue_size=5, **FAST)
    sink.start()
    try:
        for k in range(8):
            sink.submit(kit.inspection("FAIL" if k % 2 else "PASS", index=k))  # never blocks the caller
        kit.wait_for(lambda: sink.status()["state"] == "retrying", 5, "the sink to retry")
        s = sink.status()
        assert (s["backlog"], s["dropped"], s["written"]) == (5, 3, 0)  # the oldest 3 dropped, counted
        assert "Connection refused" in s["last_error"]
        b.start()
        kit.wait_for(lambda: len(mes.records()) >= 5, 10, "the 5 buffered inspections")
        assert [r["board_id"] for r in mes.records()] == [f"b{k}" for k in range(3, 8)]  # in order
    finally:
        sink.close(5)
        mes.close()
    s = sink.status()
    assert (s["written"], s["dropped"], s["backlog"], s["acked"]) == (5, 3, 0, 5)


def test_station_status_is_retained_online_offline_and_the_last_will(tmp_path: Path, broker, kit) -> None:
    b = broker()
    sink = MqttSink("127.0.0.1", b.port, station="t", **FAST)
    sink.start()
    kit.wait_for(lambda: sink.status()["connected"], 10, "the sink to connect")
    late = kit.Subscriber(b.port, "pcb-inspect/t/status")  # subscribes after: gets the retained message
    kit.wait_for(lambda: late.payloads(), 5, "the retained status")
    assert late.payloads()[0] == (b"online", True)
    late.close()
    sink.close(5)
    late = kit.Subscriber(b.port, "pcb-inspect/t/status")
    kit.wait_for(lambda: late.payloads(), 5, "the retained status")
    assert late.payloads()[0] == (b"offline", True)
    late.close()
    # a station that dies without a goodbye: the broker publishes its will
    code = ("import time; from pcb_inspect.inspect.sinks.mqtt import MqttSink; "
            f"s = MqttSink('127.0.0.1', {b.port}, station='t', keepalive_s=1); s.start(); time.sleep(60)")
    watcher = kit.Subscriber(b.port, "pcb-inspect/t/status")
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        kit.wait_for(lambda: (b"online", False) in watcher.payloads(), 20, "the child station online")
        child.kill()
        kit.wait_for(lambda: watcher.payloads()[-1] == (b"offline", False), 10, "the last will")
    finally:
        child.kill()
        child.wait(5)
        watcher.close()


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1, made with cryptography (already a dependency)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:  # noqa: ANN001
        def name(text: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

        b = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            b = b.add_extension(san, critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca, server = folder / "ca.pem", folder / "server.pem"
    key = folder / "server.key"
    folder.mkdir(parents=True, exist_ok=True)
    ca.write_bytes(cert("test CA", ca_key, "test CA", ca_key, True).public_bytes(serialization.Encoding.PEM))
    server.write_bytes(cert("127.0.0.1", server_key, "test CA", ca_key, False)
                       .public_bytes(serialization.Encoding.PEM))
    key.write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return ca, server, key


def test_tls_with_a_password_from_the_environment(tmp_path: Path, broker, kit, monkeypatch) -> None:
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("needs mosquitto_passwd (Debian's mosquitto package); not installed here")
    ca, server, key = _tls_files(tmp_path / "tls")
    passwd = tmp_path / "tls" / "passwd"
    subprocess.run([passwd_tool, "-b", "-c", str(passwd), "line", "s3cret pass"], check=True)
    os.chmod(passwd, 0o600)
    b = broker(f"allow_anonymous false\npassword_file {passwd}\n"
               f"cafile {ca}\ncertfile {server}\nkeyfile {key}")
    from pcb_inspect.inspect import lineio

    monkeypatch.setenv("LINE_MQTT_PASSWORD", "s3cret pass")
    args = kit.line_args("--station", "t", "--http", "off", "--mqtt", f"127.0.0.1:{b.port}",
                         "--mqtt-ca", str(ca),
                         "--mqtt-user", "line", "--mqtt-password-env", "LINE_MQTT_PASSWORD")
    (sink,) = lineio.make_sinks(args)
    assert sink.tls and sink.username == "line"
    sink.retry_s = 0.05
    mes = kit.Subscriber(b.port, "pcb-inspect/t/inspections", ca_certs=str(ca), username="line",
                         password="s3cret pass")
    sink.start()
    try:
        sink.submit(kit.inspection("FAIL"))
        kit.wait_for(lambda: mes.records(), 10, "an inspection over TLS")
        assert mes.records()[0]["verdict"] == "FAIL"
        assert "s3cret" not in json.dumps(sink.status()) and "s3cret" not in repr(vars(args))
    finally:
        sink.close(5)
        mes.close()
    wrong = MqttSink("127.0.0.1", b.port, station="t", ca_file=ca, username="line", password="wrong", **FAST)
    wrong.start()
    try:
        kit.wait_for(lambda: wrong.status()["errors"] >= 1, 10, "a refused login")
        s = wrong.status()
        assert s["state"] == "retrying" and "\n" not in s["last_error"]
        assert "refused the connection" in s["last_error"] and "wrong" not in s["last_error"]
    finally:
        wrong.close(0)
    untrusted = MqttSink("127.0.0.1", b.port, station="t", tls=True, username="line", password="x", **FAST)
    untrusted.start()  # TLS with the system's CAs: the test CA is not one of them
    try:
        kit.wait_for(lambda: untrusted.status()["errors"] >= 1, 10, "a refused certificate")
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.status()["last_error"]
    finally:
        untrusted.close(0)
