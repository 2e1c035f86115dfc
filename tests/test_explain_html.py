"""The HTML explanation loads in headless Chromium (Debian's `chromium`, installed by .ci/run)
with no console errors, and its screenshot is not blank."""
import os
import shutil
import struct
import subprocess
import zlib

import pytest
import torch

import qgolden
from qgolden.examples import forum
from qgolden.explain import explain, render


def png_pixels(data: bytes):
    """(width, height, set of distinct RGB(A) pixel tuples) of an 8-bit RGB/RGBA PNG (a tiny reader)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype = hdr[:4]
    assert depth == 8 and ctype in (2, 6), f"unexpected PNG format depth={depth} color={ctype}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    prev = bytearray(stride)
    colours = set()
    i = 0
    for _ in range(h):
        f = raw[i]
        line = bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp * 7):
            colours.add(bytes(line[x:x + 3]))
        prev = line
    return w, h, colours


def test_html_in_headless_chromium(tmp_path, forum_model):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        # CI installs chromium and sets QGOLDEN_REQUIRE_CHROMIUM, so the test cannot silently skip there
        assert not os.environ.get("QGOLDEN_REQUIRE_CHROMIUM"), "chromium is required here (.ci/run installs it)"
        pytest.skip("no chromium on this machine (apt-get install chromium to run this test)")
    prog = qgolden.lower(forum_model, example_inputs=(torch.from_numpy(forum.INPUTS),), engine="x86", isa="avx2")
    doc, _, _ = explain(prog, [forum.INPUTS], sample=0)
    html = render(doc, "html")
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count("<details") == len(prog.nodes) + 1 and html.count("<svg") == 3
    page = tmp_path / "explain.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp_path / "shot.png"
    r = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,900",
         "--enable-logging=stderr", "--v=0", page.as_uri()],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    console = [l for l in r.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l or ":ERROR:CONSOLE" in l]
    assert console == [], "\n".join(console)
    assert shot.exists(), f"no screenshot (exit {r.returncode}): {r.stderr[-2000:]}"
    w, h, colours = png_pixels(shot.read_bytes())
    assert (w, h) == (1200, 900)
    assert len(colours) > 5, "the screenshot is blank"
