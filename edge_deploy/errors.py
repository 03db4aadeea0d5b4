"""Deploy-side errors: each one line that names the bundle, file or field, so a refused update is obvious."""

from __future__ import annotations

from pcb_inspect.inspect.errors import PcbInspectError


class DeployError(PcbInspectError):
    """A deploy step cannot go ahead (missing release, busy root, failed service signal)."""


class BundleRefused(DeployError):
    """A bundle failed a check (checksum, member list, path, signature, contract); the box is unchanged."""
