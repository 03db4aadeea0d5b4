"""Fixtures for the deploy tests: keys, small bundles of the shipped model, deploy roots, a stand-in service.

The stand-in answers ``/healthz`` and ``/api/status`` like the runtime will: it reports the model of whatever
release ``ROOT/current`` points at (as the runtime does after its hot swap), and counts frames.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pcb_inspect.edge_deploy.bundle import BundleSpec, write_bundle
from pcb_inspect.edge_deploy.releases import Root
from pcb_inspect.edge_deploy.signing import generate_keypair

REPO = Path(__file__).resolve().parents[2]
DEPLOY = [sys.executable, "-m", "pcb_inspect.inspect.cli", "deploy"]


def deploy(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``pcb-inspect deploy ARGS`` (the standalone entry of the same parser) in a subprocess."""
    return subprocess.run([*DEPLOY, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def variant_model(src: Path, dst: Path, tag: bytes) -> Path:
    """A copy of ``src`` with other bytes but the same graph: an unknown protobuf field (number 1000)
    appended, which onnxruntime skips: releases whose model sha256 differ, without the ``onnx`` package."""
    if len(tag) > 127:
        raise ValueError("tag too long")
    dst.write_bytes(src.read_bytes() + b"\xc2\x3e" + bytes([len(tag)]) + tag)
    return dst


@pytest.fixture(scope="session")
def keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys") / "signer")


@pytest.fixture(scope="session")
def other_keypair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("otherkeys") / "intruder")


@pytest.fixture(scope="session")
def bundles(
    tmp_path_factory: pytest.TempPathFactory, keypair: tuple[Path, Path], shipped_model: Path
) -> dict[str, Path]:
    """Signed v1 (with config and templates), v2 and v3 (other model bytes), and an unsigned v1u."""
    d = tmp_path_factory.mktemp("bundles")
    templates = d / "templates"
    (templates / "line-a").mkdir(parents=True)
    (templates / "line-a" / "board.png").write_bytes(b"\x89PNG fake template")
    (d / "runtime.json").write_text(json.dumps({"station": "test"}))
    out = {}
    out["v1"] = d / "v1.tar.gz"
    write_bundle(
        BundleSpec(
            model=shipped_model,
            version="1.0.0",
            out=out["v1"],
            config=d / "runtime.json",
            templates=templates,
            sign_key=keypair[0],
        )
    )
    for version in ("2.0.0", "3.0.0"):
        model = variant_model(shipped_model, d / f"model-{version}.onnx", version.encode())
        out[f"v{version[0]}"] = d / f"v{version[0]}.tar.gz"
        write_bundle(BundleSpec(model=model, version=version, out=out[f"v{version[0]}"], sign_key=keypair[0]))
    out["v1u"] = d / "v1u.tar.gz"
    write_bundle(BundleSpec(model=shipped_model, version="1.0.1", out=out["v1u"]))
    return out


def make_root(path: Path, pub: Path | None) -> Root:
    root = Root(path)
    root.prepare()
    if pub is not None:
        (root.keys).mkdir(parents=True, exist_ok=True)
        (root.keys / pub.name).write_bytes(pub.read_bytes())
    return root


def tree_digest(path: Path) -> str:
    """One hash over every name, link target and file content under ``path`` (to prove nothing changed)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_symlink():
            h.update(b"->" + str(p.readlink()).encode())
        elif p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


class StandIn:
    """A stand-in for ``pcb-inspect run --http``: mode ``healthy``, ``unhealthy`` (503), ``frozen``
    (no frames) or ``stale`` (reports the model it started with, as if the hot swap never happened)."""

    def __init__(self, root: Path, mode: str = "healthy") -> None:
        self.root, self.mode, self.inspected = root, mode, 0
        self.started_sha = self.model_sha()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                code, body = standin.answer(self.path)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def model_sha(self) -> str | None:
        manifest = self.root / "current" / "manifest.json"
        return json.loads(manifest.read_text())["model"]["sha256"] if manifest.is_file() else None

    def answer(self, path: str) -> tuple[int, dict]:
        if path == "/healthz":
            if self.mode == "unhealthy":
                return 503, {"ok": False, "reason": "camera: no frames for 10 s"}
            return 200, {"ok": True}
        if path == "/api/status":
            if self.mode != "frozen":
                self.inspected += 1
            sha = self.started_sha if self.mode == "stale" else self.model_sha()
            return 200, {"model_sha256": sha, "inspected": self.inspected, "source_state": "streaming"}
        return 404, {"error": "not found"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def standin() -> Iterator:
    made: list[StandIn] = []

    def start(root: Path, mode: str = "healthy") -> StandIn:
        made.append(StandIn(root, mode))
        return made[-1]

    yield start
    for s in made:
        s.close()


# helpers as fixtures: with --import-mode=importlib a test module cannot import this conftest by name
@pytest.fixture(scope="session")
def run_deploy():  # noqa: ANN201
    return deploy


@pytest.fixture(scope="session")
def new_root():  # noqa: ANN201
    return make_root


@pytest.fixture(scope="session")
def digest():  # noqa: ANN201
    return tree_digest
