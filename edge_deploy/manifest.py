"""The bundle manifest: what a bundle holds, checked file by file before anything reaches a release folder.

``manifest.json`` lists the sha256 and size of every other file, so signing the manifest signs the whole
bundle. It also carries the model's contract summary (so ``deploy status`` can say what is running without
loading the model), the oldest runtime that can run it, and the target it was tuned for.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from importlib import metadata
from pathlib import Path
from typing import Any

from pcb_inspect.edge_deploy.errors import BundleRefused
from pcb_inspect.inspect.errors import ConfigError

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
MODEL_NAME = "model.onnx"  # fixed, so the service unit can name ROOT/current/model.onnx
MANIFEST_FORMAT = 1
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")  # becomes a folder name on the box
NAME_RE = VERSION_RE
PREBUILT_ENGINE_SUFFIXES = (
    ".engine",
    ".plan",
    ".trt",
)  # built on the box, never shipped (GPU/TensorRT bound)


class Target(StrEnum):
    """What the bundle was tuned for; a CPU bundle runs anywhere, a GPU bundle needs its kind of box."""

    CPU = "cpu"
    CUDA = "cuda"
    JETSON = "jetson"


# which box kinds can run a bundle of each target
RUNS_ON = {
    Target.CPU: {Target.CPU, Target.CUDA, Target.JETSON},
    Target.CUDA: {Target.CUDA},
    Target.JETSON: {Target.JETSON},
}


def parse_target(value: str) -> Target:
    try:
        return Target(value)
    except ValueError:
        raise ConfigError(f"target {value!r}: choose one of {', '.join(t.value for t in Target)}") from None


def check_version(value: str, what: str = "version") -> str:
    if not isinstance(value, str) or not VERSION_RE.match(value):
        raise ConfigError(
            f"{what} {value!r}: use 1-64 letters, digits, '.', '_', '+' or '-', from a letter or digit"
        )
    return value


def runtime_version() -> str:
    """The installed pcb-inspect version (what a bundle's ``min_runtime`` is compared with)."""
    try:
        return metadata.version("pcb-inspect")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def version_tuple(value: str) -> tuple[int, ...]:
    """``1.10.0rc1`` -> (1, 10, 0): numeric release parts only, enough to order runtime releases."""
    parts = []
    for piece in value.split("."):
        digits = re.match(r"\d+", piece)
        if not digits:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


@dataclass
class FileEntry:
    sha256: str
    size: int


@dataclass
class Manifest:
    """Parsed ``manifest.json``; ``from_json`` checks every field so later code can trust it."""

    name: str
    version: str
    created: str
    target: str
    min_runtime: str
    model: dict[str, Any]  # path, sha256, source_name, contract (summary)
    files: dict[str, FileEntry] = field(default_factory=dict)
    config: str | None = None  # path of the runtime config inside the bundle
    templates: str | None = None  # folder of templates inside the bundle
    format: int = MANIFEST_FORMAT

    def to_json(self) -> bytes:
        data = asdict(self)
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @property
    def model_sha256(self) -> str:
        return str(self.model["sha256"])

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        try:
            data = json.loads(raw.decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise BundleRefused(f"{where}: {MANIFEST_NAME} is not a JSON object")
        if data.get("format") != MANIFEST_FORMAT:
            raise BundleRefused(
                f"{where}: {MANIFEST_NAME} format {data.get('format')!r}, this box reads {MANIFEST_FORMAT}"
            )
        missing = {"name", "version", "created", "target", "min_runtime", "model", "files"} - set(data)
        if missing:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} lacks {', '.join(sorted(missing))}")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} has unknown fields {', '.join(sorted(unknown))}")
        try:
            check_version(data["version"])
            check_version(data["name"], "name")
            parse_target(data["target"])
        except ConfigError as exc:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} {exc}") from None
        files = data["files"]
        if not isinstance(files, dict) or not files:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} files is not a non-empty object")
        entries = {}
        for name, entry in files.items():
            if (
                not isinstance(entry, dict)
                or not re.fullmatch(r"[0-9a-f]{64}", str(entry.get("sha256", "")))
                or not isinstance(entry.get("size"), int)
                or entry["size"] < 0
            ):
                raise BundleRefused(f"{where}: {MANIFEST_NAME} entry {name!r} needs sha256 (64 hex) and size")
            entries[name] = FileEntry(entry["sha256"], entry["size"])
        model = data["model"]
        if not isinstance(model, dict) or model.get("path") != MODEL_NAME or model.get("path") not in entries:
            raise BundleRefused(
                f"{where}: {MANIFEST_NAME} model.path must be {MODEL_NAME} and listed in files"
            )
        if model.get("sha256") != entries[MODEL_NAME].sha256:
            raise BundleRefused(f"{where}: {MANIFEST_NAME} model.sha256 differs from files[{MODEL_NAME}]")
        data["files"] = entries
        return cls(**data)


def contract_summary(model: Path) -> dict[str, Any]:
    """The model's contract, shortened to what an operator compares between releases.

    Loads the model with onnxruntime (what the box has; ``onnx`` is a training-side package), which also
    proves the file is a loadable model with a valid contract.
    """
    from pcb_inspect.inspect.backends import OnnxRuntimeBackend

    contract = OnnxRuntimeBackend(model).contract
    metrics = {k: v for k, v in (contract.metrics or {}).items() if isinstance(v, (int, float, str))}
    return {
        "contract_version": contract.contract_version,
        "version": contract.version,
        "arch": contract.arch,
        "class_names": list(contract.class_names),
        "input_size": contract.input_size,
        "score_threshold": contract.score_threshold,
        "thresholds": dict(contract.thresholds),
        "training_data_sha256": (contract.training_data or {}).get("sha256", ""),
        "metrics": metrics,
    }
