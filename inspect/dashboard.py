"""Placeholder: being written (see inspect/extensions.py for the three functions every extension has)."""

from __future__ import annotations

import argparse


def add_options(parser: argparse.ArgumentParser) -> None:
    """No options yet."""


def make_sinks(args: argparse.Namespace) -> list:
    return []


def mount(app, runtime, args: argparse.Namespace) -> None:  # noqa: ANN001
    """No routes yet."""
