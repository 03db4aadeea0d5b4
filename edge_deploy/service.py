"""The systemd unit that keeps the runtime up: started at boot, restarted on failure or a missed watchdog.

``deploy service`` writes ``ROOT/pcb-inspect.service`` and, once, ``ROOT/pcb-inspect.env`` (the token and
options; never overwritten, so a token set on the box survives); ``--install`` copies the unit to
``/etc/systemd/system``, reloads systemd and enables it. The service runs as an unprivileged user, sees the
file system read-only except its data and engine-cache folders, and pings the watchdog from its loop
(:mod:`pcb_inspect.edge_deploy.sdnotify`).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pcb_inspect.edge_deploy.errors import DeployError
from pcb_inspect.inspect.errors import ConfigError

UNIT_NAME = "pcb-inspect.service"
ENV_NAME = "pcb-inspect.env"
USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")

UNIT_TEMPLATE = """\
# Written by `pcb-inspect deploy service`: re-run it rather than editing this file.
# Options and the API token live in {env}.
[Unit]
Description=pcb-inspect PCB defect inspection
Wants=network-online.target
After=network-online.target
# a crash loop (bad camera, bad model) backs off instead of spinning; `systemctl reset-failed` clears it
StartLimitIntervalSec=600
StartLimitBurst=10

[Service]
Type=notify
NotifyAccess=main
User={user}
Group={group}
{supplementary}EnvironmentFile={env}
Environment=PCB_INSPECT_ROOT={root}
Environment=PCB_INSPECT_ENGINE_CACHE={root}/engine-cache
WorkingDirectory={root}/data
ExecStart={exec} run --source ${{PCB_INSPECT_SOURCE}} --model {root}/current/model.onnx \\
    --template ${{PCB_INSPECT_TEMPLATE}} --db ${{PCB_INSPECT_DB}} --station ${{PCB_INSPECT_STATION}} \\
    --http ${{PCB_INSPECT_HTTP}} $PCB_INSPECT_ARGS
# `deploy activate --reload systemctl` lands here: the service loads ROOT/current/model.onnx again
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5
# the first start on a GPU box builds the TensorRT engine from the ONNX model (minutes on a Jetson)
TimeoutStartSec={start_timeout}
TimeoutStopSec=30
WatchdogSec={watchdog}
KillMode=mixed
UMask=0027

NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={root}/data {root}/engine-cache
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
CapabilityBoundingSet=
AmbientCapabilities=
# PrivateDevices stays off: cameras (/dev/video*) and GPUs (/dev/nvidia*, /dev/nvhost-*) are devices.
# MemoryDenyWriteExecute stays off: CUDA and TensorRT compile kernels at run time.

[Install]
WantedBy=multi-user.target
"""

ENV_TEMPLATE = """\
# pcb-inspect service options, read by {unit}. This file holds a secret: keep it 0640 root:{group}.
# Written once by `pcb-inspect deploy service`, never overwritten; restart the service after editing.
PCB_INSPECT_SOURCE=v4l2:///dev/video0
PCB_INSPECT_TEMPLATE={root}/current/templates
PCB_INSPECT_DB={root}/data/inspections.sqlite
PCB_INSPECT_STATION={station}
PCB_INSPECT_HTTP=0.0.0.0:8080
# extra `pcb-inspect run` options, split on spaces
PCB_INSPECT_ARGS=
# bearer token the HTTP API asks for (empty: the API is read-only)
PCB_INSPECT_TOKEN=
"""


@dataclass
class ServiceSpec:
    root: Path
    user: str
    exec_path: Path | None = None  # the venv's pcb-inspect script; default: the one next to this Python
    watchdog_s: int = 30
    start_timeout_s: int = 900
    groups: list[str] | None = None  # supplementary groups; default: video and render where they exist

    def __post_init__(self) -> None:
        self.root = Path(self.root).absolute()
        if not USER_RE.match(self.user) or self.user == "root":
            raise ConfigError(
                f"--user {self.user!r}: an unprivileged user name (lowercase, not root) is needed"
            )
        if self.exec_path is None:
            self.exec_path = Path(sys.executable).parent / "pcb-inspect"
        if not 5 <= self.watchdog_s <= 3600:
            raise ConfigError(f"--watchdog {self.watchdog_s}: seconds in [5, 3600]")
        if self.groups is None:
            self.groups = [g for g in ("video", "render") if _group_exists(g)]


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _primary_group(user: str) -> str:
    """The user's own group where the user exists (``nogroup`` for nobody), else its name (made with it)."""
    try:
        return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    except KeyError:
        return user


def render_unit(spec: ServiceSpec) -> str:
    groups = " ".join(spec.groups or [])
    return UNIT_TEMPLATE.format(
        root=spec.root,
        env=spec.root / ENV_NAME,
        user=spec.user,
        group=_primary_group(spec.user),
        supplementary=f"SupplementaryGroups={groups}\n" if groups else "",
        exec=spec.exec_path,
        watchdog=spec.watchdog_s,
        start_timeout=spec.start_timeout_s,
    )


def render_env(spec: ServiceSpec) -> str:
    return ENV_TEMPLATE.format(
        unit=UNIT_NAME, group=_primary_group(spec.user), root=spec.root, station=socket.gethostname()
    )


def _write_if_changed(path: Path, text: str, mode: int) -> bool:
    if path.is_file() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)
    return True


def _own(path: Path, user: str, group_only: bool = False) -> None:
    """Hand a folder to the service user (only possible, and only needed, when running as root)."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise DeployError(f"--user {user}: no such user on this box (provision.sh creates it)") from None
    os.chown(path, 0 if group_only else entry.pw_uid, entry.pw_gid)


Runner = Callable[[list[str]], None]


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        first = (r.stderr or r.stdout).strip().splitlines()[:1]
        raise DeployError(f"{' '.join(cmd)}: exit {r.returncode} ({first[0] if first else 'no output'})")


def write_service(
    spec: ServiceSpec, install: bool = False, unit_dir: Path = Path("/etc/systemd/system"), run: Runner = _run
) -> list[str]:
    """Write the unit and (once) the environment file; with ``install``, enable it. Returns what changed."""
    if install and not Path(str(spec.exec_path)).is_file():
        raise ConfigError(f"--exec {spec.exec_path}: not found; install the runtime first")
    changed = []
    spec.root.mkdir(parents=True, exist_ok=True)
    for sub in ("data", "engine-cache"):
        (spec.root / sub).mkdir(exist_ok=True)
        _own(spec.root / sub, spec.user)
    unit_text = render_unit(spec)
    local_unit = spec.root / UNIT_NAME
    if _write_if_changed(local_unit, unit_text, 0o644):
        changed.append(str(local_unit))
    env = spec.root / ENV_NAME
    if not env.exists():
        _write_if_changed(env, render_env(spec), 0o640)
        _own(env, spec.user, group_only=True)
        changed.append(str(env))
    if install:
        if shutil.which("systemctl") is None and run is _run:
            raise DeployError("--install: systemctl not found; this box does not run systemd")
        unit_dir.mkdir(parents=True, exist_ok=True)
        installed = unit_dir / UNIT_NAME
        if _write_if_changed(installed, unit_text, 0o644):
            changed.append(str(installed))
            run(["systemctl", "daemon-reload"])
        run(["systemctl", "enable", UNIT_NAME])
    return changed
