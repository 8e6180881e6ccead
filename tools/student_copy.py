"""The students' copy of a lecture notebook: every cell tagged `solution` (cell metadata `tags`) becomes a code cell
`# your solution here`, everything else is kept as it is (the exercise prompts included). Generated, never kept by
hand: the teacher's notebook is the only source.

    python tools/student_copy.py [NOTEBOOK] [-o OUT]

NOTEBOOK defaults to nbs/11_adapters_explained.ipynb, OUT to student/<its name> at the repository root (a folder
beside nbs/, so that the notebook's relative links ../figures/... still resolve; student/ is not tracked).
Standard library only (the notebook is JSON)."""
import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAG = 'solution'
STUB = '# your solution here'


def is_solution(cell: dict) -> bool:
    "Whether the cell carries the `solution` tag."
    return TAG in cell.get('metadata', {}).get('tags', [])


def stub(cell: dict) -> dict:
    "The cell students get instead of a solution: an empty-looking code cell with the solution's id."
    out = {'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'source': [STUB]}
    if 'id' in cell: out['id'] = cell['id']
    return out


def student_notebook(nb: dict) -> dict:
    "The notebook `nb` (nbformat 4 as a dict) with its solution cells replaced by stubs; `nb` is not changed."
    return {**nb, 'cells': [stub(c) if is_solution(c) else c for c in nb['cells']]}


def write_student_copy(notebook: Path, out: Path) -> Path:
    "Read `notebook`, write its students' copy to `out` (folders created); returns `out`."
    nb = json.loads(Path(notebook).read_text(encoding='utf-8'))
    n = sum(map(is_solution, nb['cells']))
    if n == 0: raise ValueError(f"{notebook}: no cell is tagged {TAG!r}; nothing to hide")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(student_notebook(nb), indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebook', nargs='?', type=Path, default=ROOT / 'nbs' / '11_adapters_explained.ipynb')
    p.add_argument('-o', '--out', type=Path, help='the copy to write (default: student/<notebook name>)')
    a = p.parse_args(argv)
    print(write_student_copy(a.notebook, a.out or ROOT / 'student' / a.notebook.name))


if __name__ == '__main__':
    main()
