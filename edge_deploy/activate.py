"""Activate and roll back: switch the ``current`` symlink, signal the service, and check it took.

A failed signal puts the pointers back at once (the service still runs the old model, and the box must not
claim otherwise). With a health URL, a release that is not healthy within the timeout is rolled back by the
same command: pointers restored, service signalled again, non-zero exit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pcb_inspect.edge_deploy.errors import DeployError
from pcb_inspect.edge_deploy.health import HealthResult, check_health
from pcb_inspect.edge_deploy.releases import Root, restore, switch
from pcb_inspect.edge_deploy.reload import Reloader

HealthCheck = Callable[[str], HealthResult]  # expected model sha256 -> result


@dataclass
class SwitchResult:
    ok: bool
    active: str | None
    message: str


def _signal_or_restore(
    root: Root, reloader: Reloader, before: tuple[str | None, str | None], version: str
) -> str:
    try:
        return reloader.signal()
    except DeployError as exc:
        restore(root, *before)
        raise DeployError(f"{exc}; {version} not activated, {before[0] or 'nothing'} stays active") from None


def _already_active(version: str, sha: str, reloader: Reloader, health: HealthCheck | None) -> SwitchResult:
    """Activating the active release again: a no-op, unless the service is not on it (an earlier activate was
    killed between the switch and the signal), in which case it is signalled once more."""
    if health is None:
        return SwitchResult(True, version, f"{version} is already active")
    result = health(sha)
    if result.ok:
        return SwitchResult(True, version, f"{version} is already active; {result.reason}")
    done = reloader.signal()
    result = health(sha)
    return SwitchResult(result.ok, version, f"{version} is already active; {done}; {result.reason}")


def activate(
    root: Root,
    version: str,
    reloader: Reloader,
    health: HealthCheck | None = None,
) -> SwitchResult:
    """Make ``version`` the running release; with ``health``, roll back when it is not healthy."""
    with root.locked():
        manifest = root.verify(version)  # re-hash: a release damaged since install is never activated
        before = switch(root, version)
        if before[0] == version:
            return _already_active(version, manifest.model_sha256, reloader, health)
        done = _signal_or_restore(root, reloader, before, version)
        message = f"activated {version} (previous {before[0] or 'none'}); {done}"
        if health is None:
            return SwitchResult(True, version, message)
        result = health(manifest.model_sha256)
        if result.ok:
            return SwitchResult(True, version, f"{message}; {result.reason}")
        if before[0] is None:
            return SwitchResult(
                False,
                version,
                f"{version} is unhealthy ({result.reason}); no earlier release to roll back to",
            )
        restore(root, *before)
        try:
            again = reloader.signal()
        except DeployError as exc:
            again = f"but signalling the service failed: {exc}"
        return SwitchResult(
            False, before[0], f"{version} is unhealthy ({result.reason}); rolled back to {before[0]}, {again}"
        )


def rollback(root: Root, reloader: Reloader, health: HealthCheck | None = None) -> SwitchResult:
    """Swap ``current`` and ``previous`` (a second rollback returns to where the first started)."""
    with root.locked():
        current, previous = root.pointer("current"), root.pointer("previous")
        if previous is None or previous == current:
            raise DeployError(
                f"{root.path}: no previous release to roll back to (active: {current or 'none'})"
            )
        manifest = root.verify(previous)
        root.set_pointer("current", previous)
        root.set_pointer("previous", current)
        done = _signal_or_restore(root, reloader, (current, previous), previous)
        message = f"rolled back to {previous} (from {current}); {done}"
        if health is None:
            return SwitchResult(True, previous, message)
        result = health(manifest.model_sha256)
        return SwitchResult(result.ok, previous, f"{message}; {result.reason}")


def health_check(url: str, timeout: float, interval: float = 1.0) -> HealthCheck:
    return lambda sha: check_health(url, sha, timeout=timeout, interval=interval)
