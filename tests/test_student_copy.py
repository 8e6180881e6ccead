"""tools/student_copy.py on the lecture (nbs/11_adapters_explained.ipynb), as a teacher runs it: the students' copy
has no solution left (no cell tagged `solution`, no solution's code), a stub where each was, the exercise prompts,
and every other cell unchanged."""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LECTURE = ROOT / "nbs" / "11_adapters_explained.ipynb"
SCRIPT = ROOT / "tools" / "student_copy.py"


def _cells(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def _src(cell):
    return "".join(cell["source"])


def _tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_the_lecture_tags_one_solution_after_each_exercise():
    cells = _cells(LECTURE)
    prompts = [i for i, c in enumerate(cells)
               if c["cell_type"] == "markdown" and re.match(r"\*\*Exercise \d", _src(c))]
    solutions = [i for i, c in enumerate(cells) if "solution" in _tags(c)]
    assert len(prompts) == 4
    assert solutions == [i + 1 for i in prompts]          # each prompt is followed by its solution, tagged
    assert all(_src(cells[i]).startswith("# Solution of exercise") for i in solutions)


def test_student_copy_has_the_prompts_and_no_solution(tmp_path):
    out = tmp_path / "student" / "lecture.ipynb"
    r = subprocess.run([sys.executable, str(SCRIPT), str(LECTURE), "-o", str(out)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    teacher, student = _cells(LECTURE), _cells(out)
    assert len(student) == len(teacher)
    assert not [c for c in student if "solution" in _tags(c)]
    assert not [c for c in student if "Solution of exercise" in _src(c)]
    for t, s in zip(teacher, student):
        if "solution" in _tags(t):
            stub = ("code", "# your solution here", [], t.get("id"))
            assert (s["cell_type"], _src(s), s["outputs"], s.get("id")) == stub
        else:
            assert s == t                                    # prompts, explanations and the other code as they are
    prompts = [_src(c) for c in student if c["cell_type"] == "markdown" and re.match(r"\*\*Exercise \d", _src(c))]
    assert [p[:13] for p in prompts] == [f"**Exercise {i} " for i in range(1, 5)]
    assert json.loads(out.read_text(encoding="utf-8"))["nbformat"] == 4


def test_student_copy_refuses_a_notebook_without_solutions(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["no exercise"]}], "metadata": {},
          "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "plain.ipynb"
    src.write_text(json.dumps(nb))
    r = subprocess.run([sys.executable, str(SCRIPT), str(src), "-o", str(tmp_path / "out.ipynb")], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "no cell is tagged 'solution'" in r.stderr
    assert not (tmp_path / "out.ipynb").exists()
