"""Signalling the service, checking its health, and rolling back by itself when a release is unhealthy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy.activate import activate, health_check
from pcb_inspect.edge_deploy.errors import DeployError
from pcb_inspect.edge_deploy.health import check_health
from pcb_inspect.edge_deploy.releases import install
from pcb_inspect.edge_deploy.reload import ReloadKind, parse_reload
from pcb_inspect.inspect.errors import ConfigError

NONE = parse_reload("none")

# A stand-in service process: writes its pid file, counts SIGHUPs into a file, runs until killed.
HUP_COUNTER = """
import os, signal, sys, time
pidfile, counter = sys.argv[1:3]
hups = [0]
def on_hup(*_):
    hups[0] += 1
    open(counter, "w").write(str(hups[0]))
signal.signal(signal.SIGHUP, on_hup)
open(pidfile, "w").write(str(os.getpid()))
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def box(bundles: dict[str, Path], keypair, tmp_path: Path, new_root):  # noqa: ANN201
    root = new_root(tmp_path / "box", keypair[1])
    for name in ("v1", "v2"):
        install(root, bundles[name])
    activate(root, "1.0.0", NONE)
    return root


@pytest.fixture
def hup_service(tmp_path: Path):  # noqa: ANN201
    pidfile, counter = tmp_path / "service.pid", tmp_path / "hups"
    proc = subprocess.Popen([sys.executable, "-c", HUP_COUNTER, str(pidfile), str(counter)])
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    yield pidfile, counter
    proc.kill()
    proc.wait(timeout=10)


def _hups(counter: Path, want: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if counter.exists() and counter.read_text() and int(counter.read_text()) >= want:
            break
        time.sleep(0.02)
    return int(counter.read_text()) if counter.exists() and counter.read_text() else 0


def test_parse_reload() -> None:
    assert parse_reload("systemctl").arg == "pcb-inspect"
    assert parse_reload("systemctl:line-3").arg == "line-3"
    assert parse_reload("pidfile:/run/x.pid").kind is ReloadKind.PIDFILE
    for bad in ("kill", "pidfile", "none:x"):
        with pytest.raises(ConfigError):
            parse_reload(bad)


def test_activate_signals_the_service_through_a_pidfile(box, hup_service) -> None:
    pidfile, counter = hup_service
    r = activate(box, "2.0.0", parse_reload(f"pidfile:{pidfile}"))
    assert r.ok and "sent SIGHUP" in r.message
    assert _hups(counter, 1) == 1


def test_failed_signal_keeps_the_old_release(box, tmp_path: Path) -> None:
    dead = tmp_path / "dead.pid"
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead.write_text(str(proc.pid))  # a process that no longer runs
    with pytest.raises(DeployError, match="not running; 2.0.0 not activated, 1.0.0 stays active"):
        activate(box, "2.0.0", parse_reload(f"pidfile:{dead}"))
    assert (box.pointer("current"), box.pointer("previous")) == ("1.0.0", None)


def test_systemctl_reload(box, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\n'
        '[ "$2" = pcb-inspect ] || { echo "Unit $2 not found." >&2; exit 5; }\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert activate(box, "2.0.0", parse_reload("systemctl")).ok
    assert log.read_text().split("\n")[0] == "reload-or-restart pcb-inspect"
    with pytest.raises(DeployError, match="exit 5 \\(Unit other not found.\\)"):
        activate(box, "1.0.0", parse_reload("systemctl:other"))
    assert box.pointer("current") == "2.0.0"


def test_health_healthy_and_unhealthy(box, standin) -> None:
    sha = box.manifest("1.0.0").model_sha256
    good = standin(box.path)
    r = check_health(good.url, sha, timeout=5, interval=0.05)
    assert r.ok and "frames inspected" in r.reason
    bad = standin(box.path, "unhealthy")
    r = check_health(bad.url, sha, timeout=0.3, interval=0.05)
    assert not r.ok and "/healthz answered 503: camera: no frames" in r.reason
    frozen = standin(box.path, "frozen")
    r = check_health(frozen.url, sha, timeout=0.3, interval=0.05)
    assert not r.ok and "no frames inspected" in r.reason and "streaming" in r.reason
    r = check_health(good.url, "0" * 64, timeout=0.3, interval=0.05)
    assert not r.ok and "not swapped" in r.reason
    r = check_health(
        "http://127.0.0.1:9", sha, timeout=0.3, interval=0.05
    )  # nothing listens on the discard port
    assert not r.ok and "answered nothing" in r.reason


def test_health_cli(box, standin, run_deploy) -> None:
    good, bad = standin(box.path), standin(box.path, "unhealthy")
    r = run_deploy("health", "--url", good.url, "--root", box.path, "--timeout", "10", "--interval", "0.1")
    assert r.returncode == 0, r.stderr
    r = run_deploy("health", "--url", bad.url, "--root", box.path, "--timeout", "0.5", "--interval", "0.1")
    assert r.returncode == 1 and "503" in r.stderr
    r = run_deploy("health", "--url", good.url, "--expect-sha256", "nope")
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_activate_rolls_back_when_unhealthy(box, standin, hup_service) -> None:
    pidfile, counter = hup_service
    sick = standin(box.path, "stale")  # keeps serving the old model: the hot swap did not take
    r = activate(
        box, "2.0.0", parse_reload(f"pidfile:{pidfile}"), health_check(sick.url, timeout=0.5, interval=0.05)
    )
    assert not r.ok and r.active == "1.0.0"
    assert "2.0.0 is unhealthy" in r.message and "rolled back to 1.0.0" in r.message
    assert (box.pointer("current"), box.pointer("previous")) == ("1.0.0", None)  # exactly as before
    assert _hups(counter, 2) == 2  # signalled for the switch, and again for the way back


def test_activate_cli_with_health(box, standin, run_deploy) -> None:
    good = standin(box.path)
    r = run_deploy(
        "activate", "2.0.0", "--root", box.path, "--health-url", good.url, "--health-timeout", "10"
    )
    assert r.returncode == 0 and "healthy" in r.stdout, r.stderr
    sick = standin(box.path, "unhealthy")
    r = run_deploy("activate", "1.0.0", "--root", box.path, "--health-url", sick.url, "--health-timeout", "1")
    assert r.returncode == 1 and "rolled back to 2.0.0" in r.stderr
    assert box.pointer("current") == "2.0.0"
    r = run_deploy("rollback", "--root", box.path)
    assert r.returncode == 0 and box.pointer("current") == "1.0.0"


def test_activate_again_signals_a_service_that_missed_the_switch(box, standin, hup_service) -> None:
    pidfile, counter = hup_service
    stale = standin(box.path, "stale")  # serves 1.0.0's model
    box.set_pointer("current", "2.0.0")  # as if activate was killed after the switch, before the signal
    reload = parse_reload(f"pidfile:{pidfile}")
    r = activate(box, "2.0.0", reload, health_check(stale.url, timeout=0.3, interval=0.05))
    assert not r.ok and "already active; sent SIGHUP" in r.message
    assert _hups(counter, 1) == 1
    good = standin(box.path)
    r = activate(box, "2.0.0", reload, health_check(good.url, timeout=5, interval=0.05))
    assert r.ok and "already active; healthy" in r.message
    assert _hups(counter, 1) == 1  # healthy: not signalled again
