"""GET/POST /api/model on a real station: the swap needs the token, a bad model is refused with the running
one kept, a good one becomes the model that judges the boards."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pcb_inspect.inspect.run import build_runtime, serve
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.models.registry import default_model_path

TOKEN = "swap-test-token"


def _call(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_model_swap_over_http_needs_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PCB_INSPECT_TOKEN", TOKEN)
    from pcb_inspect.inspect.options import add_run_options

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    args = parser.parse_args(["--source", "synthetic://?fps=20&boards=4", "--http", "127.0.0.1:0"])
    config = RunConfig(source=args.source, station="api", workers=1)
    runtime = build_runtime(config, tmp_path / "r.db", None, (10, 10), args=args)
    runtime.start()
    server = serve(runtime, "127.0.0.1:0", args)
    loop = threading.Thread(target=runtime.run)
    loop.start()
    url = f"{server.url}/api/model"
    try:
        status, body = _call(url)
        assert status == 200 and body["model_sha256"] == runtime.inspector.backend.model_sha256
        old = body["model_sha256"]
        assert _call(url, {"model": str(default_model_path("fp32"))})[0] == 401  # no token: refused
        assert _call(url, {"model": str(default_model_path("fp32"))}, token="wrong")[0] == 401
        status, body = _call(url, {"model": str(tmp_path / "missing.onnx")}, token=TOKEN)
        assert status == 202
        deadline = time.time() + 60
        while _call(url)[1]["swap"]["state"] == "loading" and time.time() < deadline:
            time.sleep(0.1)
        status, body = _call(url)
        assert body["swap"]["state"] == "failed" and "missing.onnx" in body["swap"]["error"]
        assert body["model_sha256"] == old  # the running model kept inspecting
        status, body = _call(url, {"model": str(default_model_path("fp32"))}, token=TOKEN)
        assert status == 202
        while _call(url)[1]["swap"]["state"] == "loading" and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # the loop switches between frames
        status, body = _call(url)
        assert body["swap"]["state"] == "done" and body["model_sha256"] != old
        assert "/api/model" in json.loads(urllib.request.urlopen(f"{server.url}/openapi.json").read())["paths"]
    finally:
        runtime.stop()
        loop.join(timeout=60)
        server.stop()
