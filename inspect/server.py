"""The runtime's HTTP app: status and health for people and supervisors, and the base others add routes to.

``create_app(runtime)`` returns a FastAPI app; the runtime is any object with ``status() -> dict`` and
``health() -> (ok, reason)``, kept on ``app.state.runtime`` so routers added later (the operator page,
metrics) reach it through ``request.app.state.runtime``. :class:`HttpServer` runs the app with uvicorn in a
daemon thread of the line process; binding is done here first, so a port in use is a one-line ConfigError
before the run starts, never a ``sys.exit`` inside uvicorn.
"""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from typing import Protocol

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pcb_inspect.inspect.errors import ConfigError

log = logging.getLogger(__name__)


class Runtime(Protocol):
    def status(self) -> dict: ...

    def health(self) -> tuple[bool, str]: ...


class SinkStatus(BaseModel):
    """One sink, as :meth:`Sink.status` reports it (sinks add counters of their own)."""

    model_config = ConfigDict(extra="allow")

    name: str
    state: str = Field(description="starting, ok, retrying, failed or closed")
    backlog: int = Field(description="results waiting to be written")
    written: int
    dropped: int = Field(description="results dropped because the queue was full or the sink closed")
    errors: int
    last_error: str = ""


class Status(BaseModel):
    """The line at a glance. The loop may add fields of its own; these are always there."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    inspected: int = Field(description="boards inspected since start")
    pass_: int = Field(alias="pass", description="boards with verdict PASS")
    fail: int
    review: int
    error: int
    dropped: int = Field(description="frames the loop dropped because the engine was behind")
    boards_per_s: float
    p50_ms: float | None = Field(description="median latency, capture to verdict; null before any board")
    p99_ms: float | None
    source_state: str
    source: str
    model_sha256: str
    station: str
    uptime_s: float
    sinks: list[SinkStatus]


class Health(BaseModel):
    ok: bool
    reason: str | None = None


def create_app(runtime: Runtime, *, title: str = "pcb-inspect") -> FastAPI:
    """The app with ``GET /api/status`` and ``GET /healthz``; add more with ``app.include_router``."""
    app = FastAPI(title=title, summary="PCB defect inspection: line runtime")
    app.state.runtime = runtime

    @app.get("/api/status", response_model=Status, response_model_by_alias=True, tags=["runtime"])
    def status() -> dict:
        """Counts, rates, latency, the source and every sink."""
        return runtime.status()

    @app.get("/healthz", response_model=Health, tags=["runtime"],
             responses={503: {"model": Health, "description": "not healthy, with the reason"}})
    def healthz() -> JSONResponse:
        """200 while the line inspects; 503 with the reason when it cannot (for a supervisor or probe)."""
        try:
            ok, reason = runtime.health()
        except Exception as exc:  # noqa: BLE001 - a broken health check is itself unhealthy
            ok, reason = False, f"health check failed: {type(exc).__name__}: {' '.join(str(exc).split())}"
        if ok:
            return JSONResponse({"ok": True})
        return JSONResponse({"ok": False, "reason": str(reason) or "unhealthy"}, status_code=503)

    return app


def parse_hostport(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` (or ``"[::1]:8080"``, ``"0.0.0.0:80"``) to (host, port); one-line ConfigError."""
    example = "need HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
    text = str(text).strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise ConfigError(f"HTTP address {text!r}: {example}")
    if host.startswith("["):
        if not host.endswith("]") or len(host) < 3:
            raise ConfigError(f"HTTP address {text!r}: {example}")
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"HTTP address {text!r}: put an IPv6 host in brackets, e.g. [::1]:8080")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"HTTP address {text!r}: port {port_text!r} is not a number in 0..65535")
    if any(c.isspace() for c in host):
        raise ConfigError(f"HTTP address {text!r}: {example}")
    return host, int(port_text)


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"HTTP address {host}:{port}: cannot resolve {host!r} ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not past a live listener
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"{host}:{port} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


class HttpServer:
    """uvicorn serving an app from a daemon thread: ``start()`` returns once it accepts connections.

    Args:
        app: the ASGI app (from :func:`create_app`).
        host, port: where to listen; port 0 picks a free one (read it back from ``.port``).
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.app, self.host, self.port = app, host, int(port)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._failure = ""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        """Bind, serve, and return once it accepts connections; a one-line ConfigError when it cannot."""
        if self._thread is not None:
            return
        self._sock = _bind(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_config=None, log_level="warning", access_log=False,
                                lifespan="auto", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                reason = self._failure or f"not serving after {timeout:.0f} s"
                self.stop()
                raise ConfigError(f"HTTP server on {self.host}:{self.port} did not start: {reason}")
            time.sleep(0.01)

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as exc:  # noqa: BLE001 - uvicorn exits by SystemExit on a failed startup
            self._failure = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
            log.error("HTTP server on %s stopped: %s", self.url, self._failure)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (finishing requests in flight for up to ``timeout``) and release the port."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
