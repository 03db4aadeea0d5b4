"""Writing files so that a reader never sees half of one: a temporary file in the same folder, then a rename.

An interrupted write leaves the old file (or none) and a ``.partial`` file that the next write replaces; never a
0-byte or half-written result that would read as "no defects".
"""

from __future__ import annotations

import os
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def check_writable_dir(path: str | Path, what: str) -> Path:
    """Create ``path`` if needed and prove it takes files, before any work starts (not after an hour of it)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".pcb-inspect-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    return path


def check_writable_file(path: str | Path, what: str) -> Path:
    """The file's folder must exist or be creatable and take files; an existing folder in its place is refused."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder, need a file name")
    check_writable_dir(path.parent if str(path.parent) else Path("."), f"{what} folder of")
    return path
