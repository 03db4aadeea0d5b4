"""How ``deploy activate`` tells the running service to hot-swap its model: chosen from a table.

The service resolves ``ROOT/current/model.onnx`` again when it gets SIGHUP. ``systemctl reload-or-restart``
sends it through the unit's ``ExecReload`` (and starts a stopped service, e.g. on the first activation); a pid
file reaches a service started by other means; ``none`` leaves the switch to the next start.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pcb_inspect.edge_deploy.errors import DeployError
from pcb_inspect.inspect.errors import ConfigError

DEFAULT_UNIT = "pcb-inspect"


class ReloadKind(StrEnum):
    NONE = "none"
    PIDFILE = "pidfile"
    SYSTEMCTL = "systemctl"


@dataclass(frozen=True)
class Reloader:
    kind: ReloadKind
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.arg}" if self.arg else self.kind.value

    def signal(self) -> str:
        """Ask the service to reload; returns what was done, raises :class:`DeployError` when it failed."""
        return _SIGNALLERS[self.kind](self.arg)


def parse_reload(value: str) -> Reloader:
    """``none``, ``systemctl[:UNIT]`` or ``pidfile:PATH``."""
    kind_text, _, arg = value.partition(":")
    try:
        kind = ReloadKind(kind_text)
    except ValueError:
        raise ConfigError(f"--reload {value!r}: choose none, systemctl[:UNIT] or pidfile:PATH") from None
    if kind is ReloadKind.PIDFILE and not arg:
        raise ConfigError("--reload pidfile: needs a path, e.g. pidfile:/run/pcb-inspect/pcb-inspect.pid")
    if kind is ReloadKind.SYSTEMCTL:
        arg = arg or DEFAULT_UNIT
    if kind is ReloadKind.NONE and arg:
        raise ConfigError(f"--reload {value!r}: none takes no argument")
    return Reloader(kind, arg)


def _none(_: str) -> str:
    return "service not signalled (--reload none); it loads the new release on its next start"


def _pidfile(path: str) -> str:
    try:
        text = Path(path).read_text().strip()
        pid = int(text.split()[0])
    except (OSError, ValueError, IndexError) as exc:
        raise DeployError(f"--reload pidfile:{path}: no pid to signal ({exc})") from None
    if pid <= 1:
        raise DeployError(f"--reload pidfile:{path}: pid {pid} is not a service")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise DeployError(f"--reload pidfile:{path}: process {pid} is not running") from None
    except PermissionError:
        raise DeployError(f"--reload pidfile:{path}: not allowed to signal process {pid}") from None
    return f"sent SIGHUP to pid {pid} ({path})"


def _systemctl(unit: str) -> str:
    try:
        r = subprocess.run(
            ["systemctl", "reload-or-restart", unit], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DeployError(f"--reload systemctl:{unit}: systemctl failed ({exc})") from None
    if r.returncode != 0:
        first = (r.stderr or r.stdout).strip().splitlines()[:1]
        raise DeployError(
            f"--reload systemctl:{unit}: exit {r.returncode} ({first[0] if first else 'no output'})"
        )
    return f"systemctl reload-or-restart {unit}"


_SIGNALLERS: dict[ReloadKind, Callable[[str], str]] = {
    ReloadKind.NONE: _none,
    ReloadKind.PIDFILE: _pidfile,
    ReloadKind.SYSTEMCTL: _systemctl,
}
