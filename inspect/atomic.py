"""Writing files so that a reader never sees half of one: a temporary file in the same folder, then a rename.

A failed or interrupted write leaves the old file (or none) and removes its temporary file; only a process killed
outright leaves a ``.partial`` file, which the next write of that path replaces. Never a 0-byte or half-written
result that would read as "no defects".
"""

from __future__ import annotations

import os
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError


def partial_path(path: str | Path) -> Path:
    """Where :func:`atomic_write_bytes` writes ``path`` before the rename."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # disk full, a folder in the way, Ctrl-C: no half file, no leftover
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def discard(path: str | Path) -> None:
    """Remove a result (and any leftover of an interrupted write of it) that would now lie."""
    for p in (Path(path), partial_path(path)):
        p.unlink(missing_ok=True)


def _not_a_folder(path: Path) -> Path | None:
    """The nearest existing one of ``path`` and its parents, when that is not a folder (nothing can go there)."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def _prove_dir(folder: Path, what: str, given: Path) -> None:
    """``folder`` (for option ``what``, given as ``given``) exists or can be made, and takes files."""
    label = f"{what} {given}"
    blocker = _not_a_folder(folder)
    if blocker is not None:
        where = "" if blocker == given else f"{blocker} "
        raise ConfigError(f"{label}: {where}is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".pcb-inspect-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{label}: cannot write in {folder} ({exc.strerror or exc})") from None


def check_writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and prove it takes files, before any work starts (not after an hour of it)."""
    path = Path(path)
    _prove_dir(path, what, path)
    return path


def check_writable_file(path: str | Path, what: str) -> Path:
    """The file's folder must exist or be creatable and take files; an existing folder in its place is refused."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder, need a file name")
    _prove_dir(path.parent, what, path)
    return path
