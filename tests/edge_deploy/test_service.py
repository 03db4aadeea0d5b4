"""The systemd unit (checked by systemd-analyze) and the sd_notify helper (against a real datagram socket)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy import sdnotify
from pcb_inspect.edge_deploy.service import ENV_NAME, UNIT_NAME, ServiceSpec, render_unit, write_service
from pcb_inspect.inspect.errors import ConfigError


def _exec(tmp_path: Path) -> Path:
    exe = tmp_path / "venv" / "bin" / "pcb-inspect"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


def test_unit_contents(tmp_path: Path) -> None:
    unit = render_unit(
        ServiceSpec(root=tmp_path / "box", user="pcbinspect", exec_path=_exec(tmp_path), groups=["video"])
    )
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "WatchdogSec=30",
        "User=pcbinspect",
        "SupplementaryGroups=video",
        f"EnvironmentFile={tmp_path}/box/{ENV_NAME}",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        f"ReadWritePaths={tmp_path}/box/data {tmp_path}/box/engine-cache",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WantedBy=multi-user.target",
        f"Environment=PCB_INSPECT_ENGINE_CACHE={tmp_path}/box/engine-cache",
    ):
        assert line in unit.splitlines(), line
    assert f"--model {tmp_path}/box/current/model.onnx" in unit
    with pytest.raises(ConfigError, match="unprivileged"):
        ServiceSpec(root=tmp_path, user="root")


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze (Debian package systemd)"
)
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    spec = ServiceSpec(root=tmp_path / "box", user="nobody", exec_path=_exec(tmp_path), groups=[])
    write_service(spec)
    unit = tmp_path / "box" / UNIT_NAME
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    output = r.stdout + r.stderr
    assert r.returncode == 0, output
    for problem in ("Unknown key", "Unknown section", "Invalid", "Failed to parse", "not executable"):
        assert problem not in output, output


def test_write_service_keeps_the_env_file_and_installs(tmp_path: Path) -> None:
    spec = ServiceSpec(root=tmp_path / "box", user="nobody", exec_path=_exec(tmp_path), groups=[])
    ran: list[list[str]] = []
    changed = write_service(spec, install=True, unit_dir=tmp_path / "units", run=ran.append)
    env = tmp_path / "box" / ENV_NAME
    assert str(env) in changed and (tmp_path / "units" / UNIT_NAME).is_file()
    assert ran == [["systemctl", "daemon-reload"], ["systemctl", "enable", UNIT_NAME]]
    assert oct(env.stat().st_mode & 0o777) == "0o640" and "PCB_INSPECT_TOKEN=" in env.read_text()
    env.write_text(env.read_text().replace("PCB_INSPECT_TOKEN=", "PCB_INSPECT_TOKEN=s3cret"))
    ran.clear()
    assert write_service(spec, install=True, unit_dir=tmp_path / "units", run=ran.append) == []
    assert ran == [["systemctl", "enable", UNIT_NAME]]  # unchanged unit: no daemon-reload
    assert "s3cret" in env.read_text()  # the token set on the box survives


def test_service_cli_print(run_deploy, tmp_path: Path) -> None:
    r = run_deploy("service", "--root", tmp_path, "--user", "pcbinspect", "--print", "--groups", "")
    assert r.returncode == 0 and "User=pcbinspect" in r.stdout and "SupplementaryGroups" not in r.stdout
    r = run_deploy("service", "--root", tmp_path, "--user", "Root!", "--print")
    assert r.returncode == 2 and r.stderr.startswith("pcb-inspect deploy: error: --user")


@pytest.mark.parametrize("abstract", [False, True])
def test_sd_notify_reaches_a_datagram_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, abstract: bool
) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        if abstract:
            name = f"pcb-inspect-test-{os.getpid()}-{id(server)}"
            server.bind(b"\0" + name.encode())
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        else:
            path = tmp_path / "notify.sock"
            server.bind(str(path))
            monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        server.settimeout(5)
        for state in ("READY=1", "WATCHDOG=1", "STOPPING=1"):
            assert sdnotify.notify(state)
            assert server.recv(4096) == state.encode()


def test_sd_notify_without_systemd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    assert sdnotify.notify("WATCHDOG=1") is False  # never raises: a lost ping must not stop the line
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval() is None
