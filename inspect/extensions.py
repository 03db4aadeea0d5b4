"""What plugs into ``run`` and ``demo`` beside the core loop: the line's I/O and the operator's page.

Each extension is a module with three functions, looked up in this one table:

- ``add_options(parser)``: its command-line options (keep the module light to import: ``--help`` loads it);
- ``make_sinks(args) -> list[Sink]``: the sinks its options ask for, built (and checked) before the loop starts;
- ``mount(app, runtime, args)``: its routes on the runtime's FastAPI app (status, health and OpenAPI are there);
- optionally ``bind(runtime)``: called once the runtime exists, with or without HTTP (sinks that show its state).
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

#: The extensions, in the order their options, sinks and routes are added.
EXTENSIONS: tuple[str, ...] = (
    "pcb_inspect.inspect.lineio",
    "pcb_inspect.inspect.dashboard",
    "pcb_inspect.inspect.model_api",
)


def modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in EXTENSIONS]


def add_options(parser: argparse.ArgumentParser) -> None:
    for ext in modules():
        ext.add_options(parser)


def make_sinks(args: argparse.Namespace) -> list:
    return [sink for ext in modules() for sink in ext.make_sinks(args)]


def bind(runtime) -> None:  # noqa: ANN001
    for ext in modules():
        hook = getattr(ext, "bind", None)
        if hook is not None:
            hook(runtime)


def mount(app, runtime, args: argparse.Namespace) -> None:  # noqa: ANN001
    for ext in modules():
        ext.mount(app, runtime, args)
