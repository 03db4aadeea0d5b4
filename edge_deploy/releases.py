"""Releases on a box: install (unpack, verify, rename), activate (switch a symlink), roll back, prune, status.

Layout under ROOT::

    releases/<version>/   one verified bundle each (manifest.json, model.onnx, config/, templates/)
    current -> releases/<version>    what the service runs (ROOT/current/model.onnx)
    previous -> releases/<version>   what ``rollback`` returns to
    .incoming/            installs in progress; whatever is there when no deploy runs is a killed one
    .trash/               releases being pruned
    keys/*.pub            trusted bundle signing keys: with any here, unsigned bundles are refused
    engine-cache/         TensorRT engines the service builds from the ONNX model on first start

Every change is a rename within ROOT (atomic on one file system, made durable with fsync), so ``kill -9`` or a
power cut at any point leaves the old ``current`` intact. One ``flock`` on ``deploy.lock`` serialises deploy
commands; the kernel drops it when its holder dies.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcb_inspect.edge_deploy import signing
from pcb_inspect.edge_deploy.bundle import _check_extracted, unpack
from pcb_inspect.edge_deploy.errors import BundleRefused, DeployError
from pcb_inspect.edge_deploy.manifest import (
    MANIFEST_NAME,
    MODEL_NAME,
    RUNS_ON,
    SIGNATURE_NAME,
    Manifest,
    Target,
    check_version,
    contract_summary,
    runtime_version,
    version_tuple,
)
from pcb_inspect.inspect.errors import ConfigError, PcbInspectError

LOCK_WAIT_S = 120.0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(Path(dirpath) / name, "rb") as f:
                os.fsync(f.fileno())
        _fsync_dir(Path(dirpath))


def box_kind() -> Target:
    """What this box is: a Jetson (L4T release file), a box whose onnxruntime has CUDA, or CPU only."""
    if Path("/etc/nv_tegra_release").is_file():
        return Target.JETSON
    try:
        from pcb_inspect.inspect.backends import available_ort_providers

        if {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(available_ort_providers()):
            return Target.CUDA
    except PcbInspectError:  # pragma: no cover - no onnxruntime at all
        pass
    return Target.CPU


@dataclass
class Root:
    """A deploy root; every method that changes it runs under :meth:`locked`."""

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path).absolute()
        self.releases = self.path / "releases"
        self.incoming = self.path / ".incoming"
        self.trash = self.path / ".trash"
        self.keys = self.path / "keys"

    def release(self, version: str) -> Path:
        return self.releases / check_version(version)

    def prepare(self) -> None:
        for d in (self.releases, self.incoming, self.trash):
            d.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / "deploy.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise DeployError(
                            f"{self.path / 'deploy.lock'}: another deploy command holds it"
                        ) from None
                    time.sleep(0.1)
            self.prepare()
            yield
        finally:
            os.close(fd)  # closing drops the lock

    # --- pointers -------------------------------------------------------------------------------------------
    def pointer(self, name: str) -> str | None:
        """The version ``current`` or ``previous`` points at, or None (absent, dangling or foreign)."""
        try:
            target = os.readlink(self.path / name)
        except OSError:
            return None
        parts = Path(target).parts
        if len(parts) != 2 or parts[0] != "releases" or not (self.releases / parts[1]).is_dir():
            return None
        return parts[1]

    def set_pointer(self, name: str, version: str | None) -> None:
        """Point ``name`` at a release by renaming a fresh relative symlink over it (atomic), or remove it."""
        link = self.path / name
        if version is None:
            link.unlink(missing_ok=True)
        else:
            tmp = self.path / f".{name}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)
            os.symlink(f"releases/{version}", tmp)  # relative: the root may be moved or bind-mounted
            os.replace(tmp, link)
        _fsync_dir(self.path)

    # --- reading releases ---------------------------------------------------------------------------------
    def versions(self) -> list[str]:
        """Installed releases, oldest install first."""
        if not self.releases.is_dir():
            return []
        found = [p for p in self.releases.iterdir() if p.is_dir() and not p.is_symlink()]
        return [p.name for p in sorted(found, key=lambda p: (p.stat().st_mtime, p.name))]

    def manifest(self, version: str) -> Manifest:
        path = self.release(version) / MANIFEST_NAME
        if not path.is_file():
            raise DeployError(f"{self.release(version)}: release {version} is not installed")
        return Manifest.from_json(path.read_bytes(), str(path))

    def trusted_keys(self, extra: list[Path] | None = None) -> list:
        paths = sorted(self.keys.glob("*.pub")) if self.keys.is_dir() else []
        return [signing.load_public_key(p) for p in paths + list(extra or [])]

    def verify(self, version: str) -> Manifest:
        """Re-check an installed release against its manifest (and signature, when the box trusts keys)."""
        folder = self.release(version)
        manifest = self.manifest(version)
        sig = folder / SIGNATURE_NAME
        signing.verify(
            (folder / MANIFEST_NAME).read_bytes(),
            sig.read_bytes() if sig.is_file() else None,
            self.trusted_keys(),
            str(folder),
        )
        _check_extracted(folder, manifest, str(folder))
        return manifest

    def clean_leftovers(self) -> list[str]:
        """Remove what killed installs and prunes left; only called under the lock."""
        removed = []
        for d in (self.incoming, self.trash):
            for p in d.iterdir() if d.is_dir() else []:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p.name)
        for p in self.path.glob(".*.tmp"):  # a symlink made but not renamed yet
            p.unlink(missing_ok=True)
        return removed


@dataclass
class InstallResult:
    version: str
    already: bool
    signer: str | None
    cleaned: list[str]


def _check_runs_here(manifest: Manifest, where: str, any_target: bool) -> None:
    if version_tuple(runtime_version()) < version_tuple(manifest.min_runtime):
        raise BundleRefused(
            f"{where}: needs pcb-inspect {manifest.min_runtime} or newer, this box runs {runtime_version()}"
        )
    kind = box_kind()
    if not any_target and kind not in RUNS_ON[Target(manifest.target)]:
        raise BundleRefused(
            f"{where}: built for target {manifest.target}, this box is {kind.value} (--any-target to force)"
        )


def install(
    root: Root, bundle: Path, extra_keys: list[Path] | None = None, any_target: bool = False
) -> InstallResult:
    """Unpack ``bundle`` into ``.incoming``, verify everything, then rename it to ``releases/<version>``."""
    if not bundle.is_file():
        raise ConfigError(f"{bundle}: bundle file not found")
    with root.locked():
        cleaned = root.clean_leftovers()
        keys = root.trusted_keys(extra_keys)
        tmp = Path(tempfile.mkdtemp(prefix="install-", dir=root.incoming))
        try:
            manifest, signer = unpack(bundle, tmp, keys)
            _check_runs_here(manifest, str(bundle), any_target)
            try:
                contract_summary(tmp / MODEL_NAME)  # loads the model: its contract is valid and in range
            except PcbInspectError as exc:
                raise BundleRefused(f"{bundle}: {MODEL_NAME}: {exc}") from None
            final = root.release(manifest.version)
            if final.exists():
                if (final / MANIFEST_NAME).read_bytes() == (tmp / MANIFEST_NAME).read_bytes():
                    return InstallResult(manifest.version, True, signer, cleaned)
                raise BundleRefused(
                    f"{bundle}: version {manifest.version} is already installed with different content; "
                    "give the new bundle a new version"
                )
            _fsync_tree(tmp)
            os.utime(tmp)  # the install time that status and prune order by
            os.rename(tmp, final)
            _fsync_dir(root.releases)
            return InstallResult(manifest.version, False, signer, cleaned)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def switch(root: Root, version: str) -> tuple[str | None, str | None]:
    """Make ``version`` current and the old current previous; returns the old (current, previous).

    ``previous`` moves first: killed between the two renames, ``current`` is still the old release, and
    running the same activate again completes the switch. Caller holds the lock.
    """
    old_current, old_previous = root.pointer("current"), root.pointer("previous")
    if old_current == version:
        return old_current, old_previous
    if old_current is not None:
        root.set_pointer("previous", old_current)
    root.set_pointer("current", version)
    return old_current, old_previous


def restore(root: Root, current: str | None, previous: str | None) -> None:
    """Put both pointers back as they were (after a failed signal or health check)."""
    root.set_pointer("current", current)
    root.set_pointer("previous", previous)


def status(root: Root) -> dict[str, Any]:
    """Active and previous release, every installed release with its size, and disk use."""
    releases = []
    total = 0
    for version in root.versions():
        folder = root.release(version)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
        total += size
        entry: dict[str, Any] = {
            "version": version,
            "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(folder.stat().st_mtime)),
            "bytes": size,
        }
        try:
            m = root.manifest(version)
            entry.update(
                name=m.name,
                created=m.created,
                target=m.target,
                model_sha256=m.model_sha256,
                signed=(folder / SIGNATURE_NAME).is_file(),
                model_version=m.model["contract"].get("version", ""),
            )
        except PcbInspectError as exc:
            entry["error"] = str(exc)
        releases.append(entry)
    cache = root.path / "engine-cache"
    cache_bytes = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) if cache.is_dir() else 0
    usage = shutil.disk_usage(root.path) if root.path.exists() else None
    return {
        "root": str(root.path),
        "active": root.pointer("current"),
        "previous": root.pointer("previous"),
        "releases": releases,
        "incomplete": sorted(p.name for p in root.incoming.iterdir()) if root.incoming.is_dir() else [],
        "bytes": {"releases": total, "engine_cache": cache_bytes, "free": usage.free if usage else 0},
    }


def prune(root: Root, keep: int) -> list[str]:
    """Remove all but the ``keep`` newest releases; never the active or previous one."""
    if keep < 0:
        raise ConfigError(f"--keep {keep}: must be 0 or more")
    with root.locked():
        root.clean_leftovers()
        versions = root.versions()
        protected = {root.pointer("current"), root.pointer("previous")} | set(
            versions[len(versions) - keep :] if keep else []
        )
        removed = []
        for version in versions:
            if version in protected:
                continue
            doomed = root.trash / f"{version}.{os.getpid()}"
            os.rename(root.release(version), doomed)  # gone from releases/ at once; deleted at leisure
            removed.append(version)
        _fsync_dir(root.releases)
        root.clean_leftovers()
        return removed
