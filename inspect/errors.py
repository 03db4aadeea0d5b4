"""One exception hierarchy, so the CLI and the camera loop can turn any failure into one line.

Each error names the file or field and what is wrong with it; the CLI prints ``str(error)`` and exits non-zero.
"""

from __future__ import annotations


class PcbInspectError(Exception):
    """Base of every error pcb-inspect raises on purpose."""


class DataError(PcbInspectError):
    """A dataset file, list or annotation line is missing or malformed."""


class ImageError(PcbInspectError):
    """An image cannot be read, is truncated or has an unusable shape."""


class ModelError(PcbInspectError):
    """A model file is missing, unreadable or violates the model contract."""


class ConfigError(PcbInspectError):
    """An option or setting is out of range or inconsistent."""


class BackendUnavailable(PcbInspectError):
    """An inference runtime was asked for but cannot be used here."""
