"""Make a bundle (model, runtime config, templates, manifest, signature); unpack one, refusing anything odd.

A bundle is a gzipped tar of regular files only. Unpacking checks the whole member list before a single byte
is written: only regular files and their parent folders, no absolute or ``..`` paths, no links or devices, no
duplicates, sizes within limits, and exactly the files the (signed) manifest lists. Only then are the files
extracted, with Python's ``data`` filter as a second guard, and hashed against the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import tarfile
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pcb_inspect.edge_deploy import signing
from pcb_inspect.edge_deploy.errors import BundleRefused
from pcb_inspect.edge_deploy.manifest import (
    MANIFEST_NAME,
    MODEL_NAME,
    PREBUILT_ENGINE_SUFFIXES,
    SIGNATURE_NAME,
    FileEntry,
    Manifest,
    check_version,
    contract_summary,
    parse_target,
    runtime_version,
)
from pcb_inspect.inspect.errors import ConfigError

MAX_MEMBERS = 20_000
MAX_TOTAL_BYTES = 4 << 30  # a model and templates are tens of MB; anything near this is not a bundle
MAX_MANIFEST_BYTES = 4 << 20


def file_digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _refuse_engine(path: Path, option: str) -> None:
    if path.suffix.lower() in PREBUILT_ENGINE_SUFFIXES:
        raise ConfigError(
            f"{option} {path}: a prebuilt TensorRT engine is bound to one GPU model and TensorRT version; "
            "ship the ONNX model, the box builds its engine on first start"
        )


def _template_files(root: Path) -> list[tuple[str, Path]]:
    if not root.is_dir():
        raise ConfigError(f"--templates {root}: not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                raise ConfigError(f"--templates {path}: a symlink; bundles hold regular files only")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not path.is_file():
                raise ConfigError(f"--templates {path}: not a regular file")
            _refuse_engine(path, "--templates")
            found.append(("templates/" + path.relative_to(root).as_posix(), path))
    if not found:
        raise ConfigError(f"--templates {root}: no files in it")
    return found


@dataclass
class BundleSpec:
    """What ``deploy bundle`` was asked to pack."""

    model: Path
    version: str
    out: Path
    config: Path | None = None
    templates: Path | None = None
    sign_key: Path | None = None
    target: str = "cpu"
    name: str = "pcb-inspect"
    min_runtime: str | None = None


def write_bundle(spec: BundleSpec) -> Manifest:
    """Pack ``spec`` into ``spec.out`` (written beside it, then renamed: no reader sees half a bundle)."""
    check_version(spec.version)
    check_version(spec.name, "--name")
    target = parse_target(spec.target)
    if not spec.model.is_file():
        raise ConfigError(f"--model {spec.model}: file not found")
    _refuse_engine(spec.model, "--model")
    if spec.model.suffix.lower() != ".onnx":
        raise ConfigError(f"--model {spec.model}: an .onnx model (its contract inside) is needed")
    contents: list[tuple[str, Path]] = [(MODEL_NAME, spec.model)]
    config_name = None
    if spec.config is not None:
        if not spec.config.is_file() or spec.config.is_symlink():
            raise ConfigError(f"--config {spec.config}: not a regular file")
        _refuse_engine(spec.config, "--config")
        config_name = "config/" + spec.config.name
        contents.append((config_name, spec.config))
    if spec.templates is not None:
        contents += _template_files(spec.templates)
    key = signing.load_private_key(spec.sign_key) if spec.sign_key else None

    files = {}
    for arcname, path in contents:
        digest, size = file_digest(path)
        files[arcname] = FileEntry(digest, size)
    now = int(time.time())
    manifest = Manifest(
        name=spec.name,
        version=spec.version,
        created=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        target=target.value,
        min_runtime=spec.min_runtime or runtime_version(),
        model={
            "path": MODEL_NAME,
            "sha256": files[MODEL_NAME].sha256,
            "source_name": spec.model.name,
            "contract": contract_summary(spec.model),
        },
        files=files,
        config=config_name,
        templates="templates" if spec.templates is not None else None,
    )
    manifest_bytes = manifest.to_json()
    extra = [(MANIFEST_NAME, manifest_bytes)]
    if key is not None:
        extra.append((SIGNATURE_NAME, signing.sign(manifest_bytes, key)))

    spec.out.parent.mkdir(parents=True, exist_ok=True)
    partial = spec.out.with_name(spec.out.name + ".partial")
    with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=now) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for arcname, data in extra:
                tf.addfile(_info(arcname, len(data), now), io.BytesIO(data))
            for arcname, path in contents:
                with open(path, "rb") as f:
                    tf.addfile(_info(arcname, files[arcname].size, now), f)
    partial.replace(spec.out)
    return manifest


def _info(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _check_members(members: list[tarfile.TarInfo], where: str) -> dict[str, tarfile.TarInfo]:
    """Regular files by name; refuses links, devices, odd paths, duplicates and oversize archives."""
    if len(members) > MAX_MEMBERS:
        raise BundleRefused(f"{where}: {len(members)} members, more than {MAX_MEMBERS}")
    files: dict[str, tarfile.TarInfo] = {}
    dirs: set[str] = set()
    total = 0
    for m in members:
        name = m.name.rstrip("/") if m.isdir() else m.name
        if not name or name.startswith("/") or "\\" in name or posixpath.normpath(name) != name:
            raise BundleRefused(f"{where}: member {m.name!r} is not a plain relative path")
        if ".." in name.split("/") or name == ".":
            raise BundleRefused(f"{where}: member {m.name!r} escapes the bundle")
        if m.issym() or m.islnk():
            raise BundleRefused(f"{where}: member {m.name!r} is a link; bundles hold regular files only")
        if m.isdir():
            dirs.add(name)
            continue
        if not m.isreg():
            raise BundleRefused(f"{where}: member {m.name!r} is a device, fifo or other special file")
        if name in files or name in dirs:
            raise BundleRefused(f"{where}: member {m.name!r} appears twice")
        total += m.size
        if total > MAX_TOTAL_BYTES:
            raise BundleRefused(f"{where}: more than {MAX_TOTAL_BYTES >> 30} GiB of files")
        files[name] = m
    parents = {posixpath.dirname(n) for n in files}
    parents = {p for n in parents for p in _ancestors(n)}
    stray = dirs - parents
    if stray:
        raise BundleRefused(f"{where}: folder {sorted(stray)[0]!r} holds no listed file")
    return files


def _ancestors(path: str) -> set[str]:
    out = set()
    while path:
        out.add(path)
        path = posixpath.dirname(path)
    return out


def _read_member(tf: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    if member.size > MAX_MANIFEST_BYTES:
        raise BundleRefused(f"{where}: {member.name} is {member.size} bytes, more than a manifest can be")
    f = tf.extractfile(member)
    if f is None:  # pragma: no cover - _check_members let only regular files through
        raise BundleRefused(f"{where}: {member.name} is not a regular file")
    return f.read()


def unpack(bundle: Path, dest: Path, trusted_keys: list) -> tuple[Manifest, str | None]:
    """Check ``bundle`` fully and extract it into the empty folder ``dest``; returns the manifest and signer.

    Raises :class:`BundleRefused` with one line on the first problem; the caller throws ``dest`` away then.
    """
    where = str(bundle)
    try:
        with tarfile.open(bundle, "r:*") as tf:
            members = _check_members(tf.getmembers(), where)
            if MANIFEST_NAME not in members:
                raise BundleRefused(f"{where}: no {MANIFEST_NAME}; not a pcb-inspect bundle")
            manifest_bytes = _read_member(tf, members[MANIFEST_NAME], where)
            sig = _read_member(tf, members[SIGNATURE_NAME], where) if SIGNATURE_NAME in members else None
            signer = signing.verify(manifest_bytes, sig, trusted_keys, where)
            manifest = Manifest.from_json(manifest_bytes, where)
            listed = set(manifest.files)
            present = set(members) - {MANIFEST_NAME, SIGNATURE_NAME}
            if present - listed:
                raise BundleRefused(
                    f"{where}: extra file {sorted(present - listed)[0]!r} is not in the manifest"
                )
            if listed - present:
                raise BundleRefused(
                    f"{where}: file {sorted(listed - present)[0]!r} listed in the manifest is missing"
                )
            for name in sorted(listed):
                if members[name].size != manifest.files[name].size:
                    raise BundleRefused(
                        f"{where}: {name} is {members[name].size} bytes, "
                        f"the manifest says {manifest.files[name].size}"
                    )
                if Path(name).suffix.lower() in PREBUILT_ENGINE_SUFFIXES:
                    raise BundleRefused(
                        f"{where}: {name} is a prebuilt TensorRT engine; engines are built on the box"
                    )
            if hasattr(tarfile, "data_filter"):  # Python 3.11.4+: the standard library's guard as a second one
                tf.extractall(dest, members=list(members.values()), filter="data")
            else:  # older 3.11 (a box's system Python): the member checks above are the guard
                tf.extractall(dest, members=list(members.values()))
    except BundleRefused:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:  # a truncated or corrupted stream
        raise BundleRefused(f"{where}: not a readable bundle ({type(exc).__name__}: {exc})") from None
    _check_extracted(dest, manifest, where)
    return manifest, signer


def _check_extracted(dest: Path, manifest: Manifest, where: str) -> None:
    """Hash what landed on disk: the only copy the service will ever read."""
    expected = set(manifest.files) | {MANIFEST_NAME}
    for dirpath, _, filenames in os.walk(dest):
        for name in filenames:
            rel = (Path(dirpath) / name).relative_to(dest).as_posix()
            if rel == SIGNATURE_NAME:
                continue
            if rel not in expected:
                raise BundleRefused(f"{where}: unexpected file {rel!r} after extraction")
    for name, entry in sorted(manifest.files.items()):
        path = dest / name
        if path.is_symlink() or not path.is_file():
            raise BundleRefused(f"{where}: {name} did not extract as a regular file")
        digest, size = file_digest(path)
        if digest != entry.sha256 or size != entry.size:
            raise BundleRefused(
                f"{where}: {name} checksum mismatch "
                f"(sha256 {digest[:12]}..., manifest {entry.sha256[:12]}...)"
            )
