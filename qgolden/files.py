"""Writes that lose nothing: every file qgolden writes goes through `write_atomic`.

The bytes go to a temporary file in the target's own directory, are flushed to disk, and the
temporary file is renamed over the target (os.replace: atomic on POSIX and Windows within one
file system). An interrupted or failed write (Ctrl-C, a full disk) leaves the old file, or no
file, never a truncated one. `refuse_inputs` stops a write over a file the command reads.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

from .errors import UserError

OWN_FILES = ".qgolden-files"  # in an output directory: the files qgolden wrote there last time


def write_atomic(path, data) -> None:
    """Write `data` (bytes, str as UTF-8, or a callable taking a binary file object) to `path`
    through a temporary file in the same directory and a rename."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"{path}: cannot write, no such directory {directory}")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a file to write")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=directory)
    except OSError as e:
        raise UserError(f"{path}: cannot write ({e.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():  # keep the mode of the file replaced
            os.chmod(tmp, path.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise UserError(f"{path}: cannot write ({e.strerror or e}); nothing was changed") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def same_file(a, b) -> bool:
    """True when paths a and b name one file (also through links, or by two spellings)."""
    try:
        return Path(a).exists() and Path(b).exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_inputs(output, inputs, what="output") -> None:
    """UserError if `output` is one of the files the command reads (`inputs`: paths or specs)."""
    for spec in inputs:
        if spec is None:
            continue
        src = str(spec).rpartition(":")[0] if ".py:" in str(spec) else str(spec)
        if same_file(output, src) or Path(output).resolve() == Path(src).resolve():
            raise UserError(f"{output}: is also an input of this command ({spec}); choose another {what} path")


def npy_bytes(a) -> bytes:
    """One array in .npy format (no pickles)."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def npz_bytes(arrays: dict) -> bytes:
    """Named arrays in .npz format (no pickles)."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


class OutputDir:
    """A directory a command fills with its own files (export, vectors).

    A non-empty directory is refused unless `force`; with `force`, only the files qgolden wrote
    there before (listed in .qgolden-files) may be replaced, and those of them this run does not
    write again are removed, so nothing stale stays and nothing of the user's is touched.
    """

    def __init__(self, path, force: bool = False, option: str = "--out"):
        self.path = Path(path)
        self.previous = []
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{path}: exists and is not a directory")
        entries = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        if entries and not force:
            raise UserError(f"{option} {path}: directory is not empty ({len(entries)} entries); choose an "
                            "empty or new directory, or pass --force to replace the files qgolden wrote there")
        if entries:
            self.previous = self._own_files()
        self.written = []

    def _own_files(self) -> list:
        f = self.path / OWN_FILES
        try:
            names = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else []
        except (OSError, ValueError, UnicodeDecodeError):
            names = []
        return [n for n in names if isinstance(n, str) and _relative_inside(n)]

    def plan(self, names) -> None:
        """Refuse (before anything is written) if a file to write exists and is not qgolden's."""
        for n in names:
            if not _relative_inside(n):
                raise UserError(f"{self.path}: refusing to write outside the directory ({n!r})")
            p = self.path / n
            if (p.exists() or p.is_symlink()) and n not in self.previous:
                raise UserError(f"{self.path / n}: exists and was not written by qgolden; not replacing it "
                                "(move it away or choose another directory)")

    def write(self, name: str, data) -> None:
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            p.unlink()
        write_atomic(p, data)
        self.written.append(name)

    def finish(self) -> None:
        """Remove qgolden's files of the previous run that this run did not write; list this run's."""
        for n in self.previous:
            if n not in self.written:
                p = self.path / n
                if p.is_file() or p.is_symlink():
                    p.unlink()
        write_atomic(self.path / OWN_FILES, json.dumps(sorted(self.written), indent=0))


def _relative_inside(name: str) -> bool:
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and name != OWN_FILES
