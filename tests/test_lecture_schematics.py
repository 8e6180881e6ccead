"""tools/lecture_schematics.py: the lecture's SVG schematics are drawn deterministically (two runs, the same bytes;
no date in them), the committed ones are those the script names, and the lecture embeds each with a relative link
that resolves from nbs/ (as GitHub renders it)."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "lecture_schematics.py"
COMMITTED = ROOT / "figures" / "lecture"


def _draw(out):
    r = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.svg"))}


def test_schematics_are_deterministic_and_committed(tmp_path):
    first, second = _draw(tmp_path / "a"), _draw(tmp_path / "b")
    assert first == second and len(first) == 4
    assert sorted(first) == sorted(p.name for p in COMMITTED.glob("*.svg"))
    for svg in first.values():
        assert b"<svg" in svg and b"dc:date" not in svg


def test_the_lecture_embeds_every_schematic():
    text = (ROOT / "nbs" / "11_adapters_explained.ipynb").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((\.\./figures/lecture/[\w.-]+\.svg)\)", text))
    assert {Path(link).name for link in links} == {p.name for p in COMMITTED.glob("*.svg")}
    for link in links:
        assert (ROOT / "nbs" / link).resolve().is_file(), link
