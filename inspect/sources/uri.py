"""What every source needs from its URI: credentials kept out of messages, and checked query parameters.

A source URI may carry a password (``rtsp://user:secret@cam/stream``); it must never reach a log line, an
error message or ``Frame.source``, so every source shows :func:`redact` of its URI and keeps the real one
private. Query parameters (``synthetic://?fps=30``) are declared per kind as :class:`Param` rows and checked
by :func:`parse_params`: a wrong value or an unknown name is one line naming the parameter and its range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from pcb_inspect.inspect.sources.base import SourceError

#: Suffixes a folder, glob or bare path is read as (lower case).
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".avi", ".m4v", ".mkv", ".mov", ".mp4")

_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@?#]*@")
_SECRET_PARAM = re.compile(r"([?&](?:pass|password|passwd|pwd|token|key|secret|auth|sig|signature)=)[^&#]*",
                           re.IGNORECASE)


def redact(uri: str) -> str:
    """The URI without ``user:password@`` and with secret-looking query values masked."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub(r"\1", uri))


def split_query(uri: str, prefix: str) -> tuple[str, str]:
    """``prefix + body [? query]`` -> (body, query); the query is "" when absent."""
    rest = uri[len(prefix):]
    body, _, query = rest.partition("?")
    return body, query


@dataclass(frozen=True)
class Param:
    """One query parameter a kind accepts: its type, inclusive range and default."""

    name: str
    kind: type  # int, float or str
    default: object
    lo: float = -math.inf
    hi: float = math.inf

    def describe(self) -> str:
        if self.kind is str:
            return "a text value"
        what = "an integer" if self.kind is int else "a number"
        return f"{what} in [{_fmt(self.lo)}, {_fmt(self.hi)}]"


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def parse_params(uri: str, query: str, params: tuple[Param, ...]) -> dict[str, object]:
    """Checked values for ``params`` from a query string; defaults where a parameter is not given.

    Raises:
        SourceError: one line naming the (redacted) URI, the parameter and what it accepts, for an unknown
            or repeated parameter, a value of the wrong type or one out of range.
    """
    shown = redact(uri)
    known = {p.name: p for p in params}
    valid = ", ".join(known) or "none"
    values: dict[str, object] = {p.name: p.default for p in params}
    seen: set[str] = set()
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise SourceError(f"{shown}: malformed query string {query!r} (expected name=value&...)") from None
    for name, raw in pairs:
        p = known.get(name)
        if p is None:
            raise SourceError(f"{shown}: unknown parameter {name!r}; valid parameters: {valid}")
        if name in seen:
            raise SourceError(f"{shown}: parameter {name!r} given twice")
        seen.add(name)
        values[name] = _convert(shown, p, raw)
    return values


def _convert(shown: str, p: Param, raw: str) -> object:
    if not raw:
        raise SourceError(f"{shown}: parameter {p.name} is empty; give {p.describe()}")
    if p.kind is str:
        return raw
    try:
        value = int(raw) if p.kind is int else float(raw)
    except ValueError:
        raise SourceError(f"{shown}: parameter {p.name}={raw} must be {p.describe()}") from None
    if not p.lo <= value <= p.hi:  # also refuses NaN
        raise SourceError(f"{shown}: parameter {p.name}={raw} must be {p.describe()}")
    return value
