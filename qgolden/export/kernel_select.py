"""Only the kernels a model calls: kernels.c cut into top-level blocks, kept when something kept uses them.

kernels.c is written as blocks separated by blank lines at brace depth 0: a comment followed by
one definition (function, typedef, enum, #define). A block is kept when it defines an identifier
that the model's own code or another kept block mentions (outside comments), so the generated C
holds the kernels the model calls and the helpers they call, nothing else. Section headers
("/* ---- name ---- */") are kept when a block of their section is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

IDENT = re.compile(r"\b[A-Za-z_]\w*\b")
COMMENT = re.compile(r"/\*.*?\*/", re.S)


@dataclass
class Block:
    text: str
    defines: frozenset
    uses: frozenset
    header: bool      # a section header comment ("/* ---- ... */")


def defined_names(code: str) -> set:
    """Identifiers a top-level C definition introduces: a function, a typedef's name, enum
    constants, a #define."""
    names = set()
    m = re.search(r"^(?:static\s+)?[\w\s\*]*?\b(\w+)\s*\(", code, re.M)
    if m and "typedef" not in code and not code.lstrip().startswith(("#", "enum")):
        names.add(m.group(1))
    m = re.search(r"^}\s*(\w+)\s*;", code, re.M)
    if m and "typedef" in code:
        names.add(m.group(1))
    for body in re.findall(r"enum\s*\{([^}]*)\}", code):
        names.update(re.findall(r"(\w+)\s*=", body))
    names.update(re.findall(r"^#define\s+(\w+)", code, re.M))
    return names


def split_blocks(source: str) -> list:
    """The top-level blocks of a C file (separated by blank lines at brace depth 0)."""
    blocks, cur, depth = [], [], 0
    for line in source.splitlines():
        if not line.strip() and depth == 0:
            if cur:
                blocks.append("\n".join(cur))
                cur = []
            continue
        cur.append(line)
        code = COMMENT.sub("", line)
        depth += code.count("{") - code.count("}")
    if cur:
        blocks.append("\n".join(cur))
    out = []
    for text in blocks:
        code = COMMENT.sub(" ", text)
        defs = frozenset(defined_names(code))
        out.append(Block(text, defs, frozenset(IDENT.findall(code)) - defs,
                         header=not code.strip() and text.lstrip().startswith("/* ----")))
    return out


def select_kernels(source: str, model_code: str) -> str:
    """The blocks of `source` that `model_code` needs (directly or through other kept blocks), in
    their order; the file's opening comment and the headers of sections with a kept block stay."""
    blocks = split_blocks(source)
    wanted = set(IDENT.findall(COMMENT.sub(" ", model_code)))
    keep = [False] * len(blocks)
    changed = True
    while changed:
        changed = False
        for i, b in enumerate(blocks):
            if not keep[i] and b.defines & wanted:
                keep[i] = True
                wanted |= b.uses
                changed = True
    if blocks and not blocks[0].defines:
        keep[0] = True  # the file's opening comment
    for i, b in enumerate(blocks):
        if b.header:
            j = i + 1
            while j < len(blocks) and not blocks[j].header:
                keep[i] = keep[i] or keep[j]
                j += 1
    return "\n\n".join(b.text for b, k in zip(blocks, keep) if k) + "\n"
