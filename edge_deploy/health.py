"""Is the service healthy on the release we just activated? ``/healthz`` ok, the right model, frames flowing.

Polls until all three hold or the timeout passes: ``GET /healthz`` answers 200 ``{"ok": true}``,
``GET /api/status`` reports the expected ``model_sha256`` (the hot swap happened) and its ``inspected``
counter rises between two polls (the camera delivers, the loop inspects). The last failing reason is reported.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from pcb_inspect.inspect.errors import ConfigError


@dataclass
class HealthResult:
    ok: bool
    reason: str
    status: dict[str, Any] = field(default_factory=dict)


def _get_json(url: str, timeout: float) -> tuple[int, Any]:
    """(HTTP status, parsed JSON or None); status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - an operator-given http URL
            code, body = r.status, r.read(1 << 20)
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read(1 << 20)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return 0, {"reason": f"no answer ({reason})"}
    try:
        return code, json.loads(body.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return code, None


def check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--health-url {url!r}: an http:// or https:// URL is needed")
    return url.rstrip("/")


def check_health(
    url: str,
    expect_sha256: str | None = None,
    timeout: float = 60.0,
    interval: float = 1.0,
    request_timeout: float = 3.0,
) -> HealthResult:
    """Poll ``url`` until the service is healthy or ``timeout`` seconds pass."""
    base = check_url(url)
    deadline = time.monotonic() + timeout
    baseline: int | None = None
    reason = "not polled"
    status: dict[str, Any] = {}
    while True:
        code, body = _get_json(base + "/healthz", request_timeout)
        if code != 200 or not isinstance(body, dict) or body.get("ok") is not True:
            detail = body.get("reason") if isinstance(body, dict) else None
            reason = f"/healthz answered {code or 'nothing'}" + (f": {detail}" if detail else "")
            baseline = None
        else:
            code, body = _get_json(base + "/api/status", request_timeout)
            if code != 200 or not isinstance(body, dict):
                reason = f"/api/status answered {code or 'nothing'}"
                baseline = None
            else:
                status = body
                sha = body.get("model_sha256")
                inspected = body.get("inspected")
                if expect_sha256 and sha != expect_sha256:
                    reason = (
                        f"model_sha256 is {str(sha)[:12]}..., expected {expect_sha256[:12]}... (not swapped)"
                    )
                    baseline = None
                elif not isinstance(inspected, int):
                    reason = "/api/status has no integer 'inspected'"
                elif baseline is not None and inspected > baseline:
                    return HealthResult(
                        True, f"healthy: {inspected - baseline} frames inspected, model {str(sha)[:12]}", body
                    )
                else:
                    if baseline is None or inspected < baseline:  # first look, or the counter restarted
                        baseline = inspected
                    state = body.get("source_state")
                    reason = f"no frames inspected (inspected stays {inspected}, source_state {state!r})"
        if time.monotonic() + interval > deadline:
            return HealthResult(False, f"{reason}; gave up after {timeout:g} s", status)
        time.sleep(interval)
