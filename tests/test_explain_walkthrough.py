"""docs/forum-walkthrough.md is the tool's own output: regenerate it and fail if it is stale."""
from pathlib import Path

from qgolden.explain.walkthrough import generate

DOC = Path(__file__).resolve().parents[1] / "docs" / "forum-walkthrough.md"


def test_forum_walkthrough_is_current():
    text = generate()
    assert "## 1. Why three scales" in text
    assert "| y_q (output) | 0 | 0 | 33 |" in text
    assert "| y_q (output) | 221 | 243 | 243 | 232 | 247 | 247 | 238 |" in text
    assert "argmax returns the first maximum, class 1" in text
    assert "| 0, 1 | 255·-56 + 255·-128 | -46920 | -32768 | SATURATED |" in text
    assert DOC.read_text(encoding="utf-8") == text, (
        "docs/forum-walkthrough.md is stale: regenerate it with "
        "`.venv/bin/python -m qgolden.explain.walkthrough > docs/forum-walkthrough.md`")


def test_forum_walkthrough_names_the_threads_three_causes():
    text = generate()
    assert "NEAR-TIE: before rounding `229.49998`" in text
    assert "gives `229.5` → 230" in text
    assert "the hidden layer is [0, 0, 32] instead of PyTorch's `33`" in text
    assert "0.9/0.0039 = 230.7692 → 231" in text
    assert "x = 1 gives 256" in text
    assert "a tie\n" not in text and "not a .5 tie" in text
