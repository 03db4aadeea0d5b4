"""A tiny ``sd_notify``: tell systemd the service is ready, alive (watchdog) or stopping.

The runtime loop calls ``notify("READY=1")`` once serving, ``notify("WATCHDOG=1")`` every loop turn (at least
twice per ``WatchdogSec``, see :func:`watchdog_interval`), and ``notify("STOPPING=1")`` on shutdown. Without
``$NOTIFY_SOCKET`` (not started by systemd) every call is a no-op returning False, so nothing else needs to
know whether systemd is there. Never raises: a lost watchdog ping must not stop the line; systemd restarts it.
"""

from __future__ import annotations

import os
import socket


def _address(raw: str) -> str | bytes | None:
    if raw.startswith("@"):  # abstract namespace: a leading NUL byte instead of '@'
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # vsock and other forms are not used on these boxes


def notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``, ``WATCHDOG=1``, ``STATUS=...``) to systemd; True when it was sent."""
    raw = os.environ.get("NOTIFY_SOCKET", "")
    address = _address(raw) if raw else None
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec``), or None without a watchdog for us."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2e6, 0.001)
    except ValueError:
        return None
