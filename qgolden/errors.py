"""User errors and the code-trust opt-in (the lowest module: imports nothing of qgolden).

`UserError` is everything wrong with what the user handed us (a file, an input, an option):
the command line prints its message as one line and exits 2. Any other exception is a bug
of qgolden (exit 3). The importers', the program loader's and the engine's errors subclass it.
"""
from __future__ import annotations

import os

TRUST_ENV = "QGOLDEN_TRUST_CODE"


class UserError(Exception):
    """Bad input from the user: printed as one line, exit 2."""


class NotModelled(UserError):
    """The runtime runs a kernel on this CPU class whose integers qgolden does not reproduce (a CPU
    fact says which and why): refused by name rather than answered differently."""


class UntrustedCode(UserError):
    """A file that runs code when loaded, without the explicit opt-in."""


def code_trusted(trust_code: bool = False, trust_pickle: bool = False) -> bool:
    """True when the user opted in to loading files that run code: `trust_code=True`
    (`--trust-code`), its old name `trust_pickle=True` (`--trust-pickle`), or
    QGOLDEN_TRUST_CODE=1 in the environment."""
    return bool(trust_code or trust_pickle or os.environ.get(TRUST_ENV, "") == "1")


def require_trust(where: str, what: str, trusted: bool) -> None:
    """Raise UntrustedCode unless `trusted`: `what` says which kind of file runs code and how."""
    if not trusted:
        raise UntrustedCode(
            f"{where}: {what}, so qgolden loads it only when you trust it: pass --trust-code "
            f"(or set {TRUST_ENV}=1; trust_code=True in Python). Needing no opt-in: a .qgp program "
            "(data), or a builder 'file.py:function' (Python code you name yourself)")
