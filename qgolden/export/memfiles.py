"""RTL memory-initialisation files: $readmemh (.mem / .hex) and Xilinx .coe, and a tiny reader.

Every value is one hex word per line, `width` bits (8, 16, 32 or 64), row-major, in the file's
encoding: two's complement (signed integers), unsigned, or float32 bit patterns (IEEE-754 binary32,
the bits as they are in memory; never two's-complement numbers).
    .mem: a `// ` header comment (width, count, encoding, dtype, shape, layout), then the words ($readmemh)
    .hex: the same `// ` header ($readmemh skips comments), then the words
    .coe: the header as a `;` comment, memory_initialization_radix=16; memory_initialization_vector= w0, ... ;
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import write_atomic

WIDTHS = (8, 16, 32, 64)


def word_width(a) -> int:
    """Bits per word for an integer array: its dtype's width (bool -> 8, float32 -> 32 bit pattern)."""
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return 8
    return int(a.dtype.itemsize * 8)


def to_words(a, width: int) -> list:
    """Row-major two's-complement words of `a` as hex strings of width/4 digits."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = np.ascontiguousarray(a, np.float32).view(np.int32)
    v = np.ascontiguousarray(a).reshape(-1).astype(np.int64 if a.dtype != np.uint64 else np.uint64)
    mask = (1 << width) - 1
    digits = width // 4
    return [format(int(x) & mask, f"0{digits}x") for x in v.tolist()]


ENCODINGS = ("twos-complement", "unsigned", "float32-bits", "float32-order-key")


def encoding_of(a) -> str:
    """The words' encoding of an array: float32-bits (IEEE-754 patterns), unsigned or twos-complement."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        return "float32-bits"
    return "unsigned" if a.dtype.kind in "ub" else "twos-complement"


def header(a, width, count, encoding=None, layout="row-major") -> str:
    """One header line (without the comment marker) naming width, count, encoding, dtype, shape, layout."""
    a = np.asarray(a)
    enc = encoding or encoding_of(a)
    return (f"width={width} count={count} depth={count} encoding={enc} signed={int(enc == 'twos-complement')} "
            f"dtype={a.dtype} shape=[{','.join(map(str, a.shape))}] layout={header_text(layout).replace(' ', '-')}")


def header_text(s) -> str:
    """Text safe in a one-line `//` or `;` header: printable ASCII only (no newline that would start
    a line of data), at most 200 characters."""
    t = "".join(ch if " " <= ch <= "~" else "_" for ch in str(s))
    return t[:200]


def write_mem(path, a, width=None, comment="", encoding=None, layout="row-major") -> int:
    """$readmemh file with a header comment; returns the width used."""
    width = width or word_width(a)
    a = np.asarray(a)
    words = to_words(a, width)
    head = ["// " + header(a, width, len(words), encoding, layout)]
    if comment:
        head.append("// " + header_text(comment))
    write_atomic(path, "\n".join(head + words) + "\n")
    return width


def write_hex(path, a, width=None, encoding=None, layout="row-major") -> int:
    """Hex words, one per line, after the same `//` header ($readmemh skips it)."""
    width = width or word_width(a)
    words = to_words(a, width)
    write_atomic(path, "\n".join(["// " + header(a, width, len(words), encoding, layout)] + words) + "\n")
    return width


def write_coe(path, a, width=None, encoding=None, layout="row-major") -> int:
    """Xilinx .coe (radix 16) with the header as a `;` comment."""
    width = width or word_width(a)
    words = to_words(a, width)
    write_atomic(path, f"; {header(a, width, len(words), encoding, layout)}\n"
                          "memory_initialization_radix=16;\nmemory_initialization_vector=\n"
                          + ",\n".join(words) + ";\n")
    return width


def read_mem(path, width=None, signed=True, shape=None) -> np.ndarray:
    """Read a .mem/.hex file back into int64 (width from the header comment if not given)."""
    words = []
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if s.startswith("//"):
            if width is None and "width=" in s:
                width = int(s.split("width=")[1].split()[0])
            if "signed=" in s:
                signed = s.split("signed=")[1].split()[0] == "1"
            continue
        if s:
            words.append(int(s.split("//")[0].strip(), 16))
    width = width or 32
    v = np.array(words, dtype=object)
    if signed:
        v = np.array([w - (1 << width) if w >> (width - 1) else w for w in words], dtype=object)
    out = np.array(v.tolist() or [], dtype=np.int64)
    return out.reshape(shape) if shape is not None else out


def read_coe(path, width, signed=True) -> np.ndarray:
    """Read a .coe vector back into int64."""
    text = Path(path).read_text().split("memory_initialization_vector=")[1]
    words = [int(w.strip().rstrip(";"), 16) for w in text.replace("\n", "").split(",") if w.strip().rstrip(";")]
    if signed:
        words = [w - (1 << width) if w >> (width - 1) else w for w in words]
    return np.array(words, dtype=np.int64)
