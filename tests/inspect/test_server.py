"""The runtime's HTTP app: status and health through FastAPI's client, and over real HTTP from uvicorn."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest
from fastapi import APIRouter, Request
from fastapi.testclient import TestClient

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.server import HttpServer, create_app, parse_hostport

SINK = {"name": "sqlite", "state": "ok", "backlog": 0, "written": 12, "dropped": 0, "skipped": 0, "errors": 0,
        "last_error": ""}


class FakeRuntime:
    def __init__(self) -> None:
        self.ok, self.reason = True, ""
        self.extra: dict = {"frames_read": 15}

    def status(self) -> dict:
        return {"inspected": 12, "pass": 9, "fail": 2, "review": 1, "error": 0, "dropped": 3,
                "boards_per_s": 11.5, "p50_ms": 9.0, "p99_ms": None, "source_state": "ok",
                "source": "synthetic://", "model_sha256": "ab" * 32, "station": "line-1", "uptime_s": 1.25,
                "sinks": [{**SINK, "disk_full": 0}], **self.extra}

    def health(self) -> tuple[bool, str]:
        if self.reason == "raise":
            raise RuntimeError("lost the camera\ntwice")
        return self.ok, self.reason


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


def test_status_is_the_runtime_dict_with_extras_kept(runtime) -> None:
    client = TestClient(create_app(runtime))
    r = client.get("/api/status")
    assert r.status_code == 200
    assert r.json() == runtime.status()  # "pass" by its name, the loop's own fields and the sink's kept


def test_healthz_200_and_503(runtime) -> None:
    client = TestClient(create_app(runtime))
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"ok": True})
    runtime.ok, runtime.reason = False, "source lost for 12 s"
    r = client.get("/healthz")
    assert (r.status_code, r.json()) == (503, {"ok": False, "reason": "source lost for 12 s"})
    runtime.reason = "raise"
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.json()["reason"] == "health check failed: RuntimeError: lost the camera twice"


def test_openapi_lists_the_routes_and_the_status_fields(runtime) -> None:
    spec = TestClient(create_app(runtime)).get("/openapi.json").json()
    assert {"/api/status", "/healthz"} <= set(spec["paths"])
    status = spec["components"]["schemas"]["Status"]
    for name in ("inspected", "pass", "fail", "review", "error", "dropped", "boards_per_s", "p50_ms",
                 "p99_ms", "source_state", "source", "model_sha256", "station", "uptime_s", "sinks"):
        assert name in status["properties"] and name in status["required"]


def test_others_add_routes_that_reach_the_runtime(runtime) -> None:
    app = create_app(runtime)
    router = APIRouter()

    @router.get("/api/extra")
    def extra(request: Request) -> dict:
        return {"inspected": request.app.state.runtime.status()["inspected"]}

    app.include_router(router)
    assert TestClient(app).get("/api/extra").json() == {"inspected": 12}


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_server_on_port_0_answers_over_real_http(runtime) -> None:
    server = HttpServer(create_app(runtime), "127.0.0.1", 0)
    server.start()
    try:
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        assert get(server.url + "/healthz") == (200, {"ok": True})
        runtime.ok, runtime.reason = False, "model not loaded"
        assert get(server.url + "/healthz") == (503, {"ok": False, "reason": "model not loaded"})
        code, body = get(server.url + "/api/status")
        assert code == 200 and body["frames_read"] == 15
    finally:
        server.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(server.url + "/healthz", timeout=2)


def test_a_port_in_use_is_a_one_line_config_error(runtime) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"^127.0.0.1:{port} is already in use$"):
            HttpServer(create_app(runtime), "127.0.0.1", port).start()
    finally:
        taken.close()


def test_a_failing_startup_is_a_config_error_not_an_exit(runtime) -> None:
    async def broken_lifespan(scope, receive, send):  # an ASGI app whose startup fails
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "no model"})

    server = HttpServer(broken_lifespan, "127.0.0.1", 0)
    with pytest.raises(ConfigError, match="did not start"):
        server.start(timeout=5)


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)),
    ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("localhost:80", ("localhost", 80)),
    ("[::1]:8080", ("::1", 8080)),
])
def test_parse_hostport(text, expected) -> None:
    assert parse_hostport(text) == expected


@pytest.mark.parametrize("text", ["8080", "127.0.0.1", ":8080", "host:http", "host:70000", "::1:8080",
                                  "[::1:80", "a b:80"])
def test_parse_hostport_refuses_with_one_line(text) -> None:
    with pytest.raises(ConfigError, match="HTTP address") as info:
        parse_hostport(text)
    assert "\n" not in str(info.value)
