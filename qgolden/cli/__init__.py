"""The `qgolden` command line: one module per command over the options and error policy of
`common`. Importing the package registers every command on `app`."""
from __future__ import annotations

# the order of --help: what users do first comes first
from . import lower, run, verify, explain, trace, certify, export, vectors, conformance, demo, check  # noqa: F401,I001
from .common import UserError, app, quiet_torch


def main():
    quiet_torch()  # torch's deprecation chatter is not the user's problem
    app()


__all__ = ["UserError", "app", "main"]
