"""Who may change things on a station: one shared token, asked for by every mutating request.

The token comes from ``--token-file FILE`` (its first line) or the environment variable ``PCB_INSPECT_TOKEN``;
never from the command line (it would show in ``ps``), never logged, never put in the page (the operator types
it once and the page keeps it in ``sessionStorage``). Rules:

- A station bound to anything but a loopback address needs a token, or it refuses to start
  (:func:`check_exposure`, one line before the model loads).
- Every mutating request (feedback, model swap, ...) needs ``Authorization: Bearer TOKEN`` whatever the
  address (:func:`require_token`; without a configured token they are all refused). A header, not a cookie,
  so a page on another site cannot make the operator's browser send it (no CSRF).
- Read-only views are open to clients on this machine (the line monitor's kiosk browser); a client elsewhere
  signs in once (``POST /api/session`` with the token) and reads with the session cookie that sets, which is
  a random id, not the token (:func:`require_reader`).

Tokens are compared in constant time; after ``MAX_FAILURES`` wrong tokens within a minute every attempt is
answered 429 until the minute has passed, so a token cannot be guessed at line speed.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pcb_inspect.inspect.errors import ConfigError

TOKEN_ENV = "PCB_INSPECT_TOKEN"
MIN_TOKEN_CHARS = 8
MAX_FAILURES = 20  # wrong tokens in FAILURE_WINDOW_S before attempts are refused for the rest of the window
FAILURE_WINDOW_S = 60.0
SESSION_COOKIE = "pcb_inspect_session"
SESSION_S = 12 * 3600.0  # a shift and then some

bearer = HTTPBearer(auto_error=False, description="the station token (--token-file or PCB_INSPECT_TOKEN)")


def load_token(token_file: str | os.PathLike | None, environ: dict | None = None) -> str | None:
    """The station token: the file's first line, else ``$PCB_INSPECT_TOKEN``, else None. One-line ConfigError
    for a file that cannot be read or a token too short; the message never contains the token."""
    environ = os.environ if environ is None else environ
    if token_file is not None:
        path = Path(token_file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"--token-file {path}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc
            raise ConfigError(f"--token-file {path}: cannot read ({why})") from None
        token, what = (text.splitlines() or [""])[0].strip(), f"--token-file {path}"
    else:
        token, what = environ.get(TOKEN_ENV, "").strip(), TOKEN_ENV
        if not token:
            return None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise ConfigError(f"{what}: the token must be at least {MIN_TOKEN_CHARS} characters without spaces")
    return token


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and names that resolve only to them (``localhost``); anything else is exposed."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_exposure(http: str, token: str | None) -> None:
    """Refuse, in one line, to serve beyond this machine without a token."""
    if not http or http.lower() == "off" or token:
        return
    from pcb_inspect.inspect.server import parse_hostport

    host, _ = parse_hostport(http)
    if not is_loopback(host):
        raise ConfigError(f"--http {http} serves beyond this machine: give a token with --token-file FILE or "
                          f"{TOKEN_ENV} (the operator page's changes and remote views need it), "
                          "or bind 127.0.0.1")


class Guard:
    """The token, the signed-in remote readers and the recent wrong tokens; on ``app.state.guard``."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None
        self._lock = threading.Lock()
        self._sessions: dict[str, float] = {}  # session id -> expiry (time.monotonic)
        self._failures: list[float] = []

    def __repr__(self) -> str:  # never the token, whatever prints this
        return f"Guard(token={'set' if self._token else 'none'}, sessions={len(self._sessions)})"

    @property
    def configured(self) -> bool:
        return self._token is not None

    def check(self, given: str | None) -> None:
        """Raise the HTTP error for a missing or wrong token; return when it matches."""
        if self._token is None:
            raise HTTPException(403, "changes are off on this station: it was started without a token "
                                     f"(--token-file or {TOKEN_ENV})")
        now = time.monotonic()
        with self._lock:
            self._failures = [t for t in self._failures if now - t < FAILURE_WINDOW_S]
            if len(self._failures) >= MAX_FAILURES:
                raise HTTPException(429, "too many wrong tokens; try again in a minute",
                                    headers={"Retry-After": str(int(FAILURE_WINDOW_S))})
        if not given:
            raise HTTPException(401, "this needs the station token (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.encode(), self._token):
            with self._lock:
                self._failures.append(now)
            raise HTTPException(401, "wrong station token", headers={"WWW-Authenticate": "Bearer"})

    def new_session(self) -> str:
        sid = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._sessions = {k: v for k, v in self._sessions.items() if v > now}
            self._sessions[sid] = now + SESSION_S
        return sid

    def session_ok(self, sid: str | None) -> bool:
        if not sid:
            return False
        with self._lock:
            expiry = self._sessions.get(sid)
        return expiry is not None and expiry > time.monotonic()


def install_guard(app, token: str | None) -> Guard:  # noqa: ANN001 - a FastAPI app
    """Put the station's guard on the app (the dashboard does this; tests of other routes may too)."""
    app.state.guard = Guard(token)
    return app.state.guard


def _guard(request: Request) -> Guard:
    guard = getattr(request.app.state, "guard", None)
    return guard if isinstance(guard, Guard) else Guard(None)  # no guard installed: every change refused


def client_is_local(request: Request) -> bool:
    client = request.client
    if client is None:
        return False
    try:
        return ipaddress.ip_address(client.host).is_loopback
    except ValueError:
        return False


def require_token(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """FastAPI dependency for every mutating route: ``dependencies=[Depends(require_token)]``.

    401 without or with a wrong ``Authorization: Bearer`` token, 403 when the station has none configured,
    429 after too many wrong ones.
    """
    _guard(request).check(credentials.credentials if credentials else None)


def require_reader(request: Request,
                   credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    """FastAPI dependency for read-only views: open to this machine, else the session cookie or the token."""
    if client_is_local(request):
        return
    guard = _guard(request)
    if guard.session_ok(request.cookies.get(SESSION_COOKIE)):
        return
    guard.check(credentials.credentials if credentials else None)
