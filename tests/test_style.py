"""The code's shape (issue #30), after fastcore's notebooks: one public definition per export cell, with its
explanation above and its test below; no function longer than 80 lines; lines of at most 119 characters and no
`;`-joined statements (ruff's E501, E702, E703).

Run as a script to list the offenders of some notebooks only: `python tests/test_style.py nbs/03_adapters.ipynb ...`.
"""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FUNCTION_LINES = 80
LINE_LENGTH = 119
LINTED = ('saharank', 'tests', 'bench', 'tools')
EXCLUDED = ('saharank/_vendor', 'saharank/_modidx.py')


def _is_export(cell: dict) -> bool:
    src = ''.join(cell.get('source', ''))
    return (cell.get('cell_type') == 'code'
            and src.lstrip().split('\n', 1)[0].replace(' ', '') in ('#|export', '#|exports'))


def public_definitions(source: str) -> list[str]:
    "Names of the top-level functions and classes of a cell's source that do not start with '_'."
    tree = ast.parse(source)
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and not n.name.startswith('_')]


def notebook_problems(path: Path) -> list[str]:
    """The export cells of the notebook at `path` that define more than one public name, or a public name without a
    markdown cell right above it or a plain code cell (its test or demonstration) right below it."""
    cells = json.loads(Path(path).read_text(encoding='utf-8'))['cells']
    out = []
    for i, c in enumerate(cells):
        if not _is_export(c): continue
        names = public_definitions(''.join(c['source']))
        if not names: continue
        where = f"{Path(path).name} cell {i} ({', '.join(names)})"
        if len(names) > 1: out.append(f"{where}: {len(names)} public definitions in one export cell")
        if i == 0 or cells[i - 1]['cell_type'] != 'markdown':
            out.append(f"{where}: no markdown explanation right above")
        nxt = cells[i + 1] if i + 1 < len(cells) else None
        if nxt is None or nxt['cell_type'] != 'code' or _is_export(nxt):
            out.append(f"{where}: no test or demonstration cell right below")
    return out


def long_functions(root: Path = ROOT) -> list[str]:
    "'file:line name (N lines)' for every function or method of the package longer than MAX_FUNCTION_LINES."
    out = []
    for f in sorted((root / 'saharank').rglob('*.py')):
        rel = f.relative_to(root).as_posix()
        if rel.startswith(EXCLUDED): continue
        for n in ast.walk(ast.parse(f.read_text(encoding='utf-8'))):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = n.end_lineno - n.lineno + 1
                if lines > MAX_FUNCTION_LINES: out.append(f"{rel}:{n.lineno} {n.name} ({lines} lines)")
    return out


def ruff_problems(paths=LINTED) -> list[str]:
    "ruff's E501 (at LINE_LENGTH), E702 and E703 over `paths`, one line per problem."
    ruff = shutil.which('ruff') or str(Path(sys.executable).parent / 'ruff')
    cmd = [ruff, 'check', '--select', 'E501,E702,E703', '--line-length', str(LINE_LENGTH), '--output-format',
           'concise', '--no-cache', *[a for e in EXCLUDED for a in ('--exclude', e)], *paths]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 1): raise RuntimeError(f"ruff failed: {r.stderr}")
    out = []
    for l in r.stdout.splitlines():
        if ': E' not in l: continue
        f, n = l.split(':')[:2]
        if ': E501' in l and int(n) in _all_lines(ROOT / f):
            continue                                      # nbdev writes `__all__` (it wraps at 120)
        out.append(l)
    return out


def _all_lines(path: Path) -> set[int]:
    "The line numbers of the module's `__all__ = [...]` assignment (nbdev-export writes it)."
    for node in ast.parse(path.read_text(encoding='utf-8')).body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == '__all__' for t in node.targets):
            return set(range(node.lineno, node.end_lineno + 1))
    return set()


NOTEBOOKS = sorted((ROOT / 'nbs').glob('*.ipynb'))


@pytest.mark.parametrize('path', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_one_public_definition_per_export_cell(path):
    problems = notebook_problems(path)
    assert not problems, '\n'.join(problems)


def test_no_function_over_80_lines():
    problems = long_functions()
    assert not problems, '\n'.join(problems)


def test_ruff_line_length_and_semicolons():
    if not (shutil.which('ruff') or (Path(sys.executable).parent / 'ruff').exists()):
        pytest.fail("ruff is not installed")
    problems = ruff_problems()
    assert not problems, f"{len(problems)} problems:\n" + '\n'.join(problems[:50])


def test_the_checks_find_what_they_look_for(tmp_path):
    "The checkers themselves: each rule is seen to fail on a cell or file that breaks it."
    md = dict(cell_type='markdown', source=['Explains f.'], metadata={})
    exp = lambda s: dict(cell_type='code', source=['#| export\n', s], metadata={}, outputs=[], execution_count=None)
    test = dict(cell_type='code', source=['f()'], metadata={}, outputs=[], execution_count=None)
    nb = tmp_path / 'x.ipynb'
    nb.write_text(json.dumps(dict(cells=[md, exp('def f(): pass\ndef _g(): pass\nX = 1'), test])))
    assert notebook_problems(nb) == []
    nb.write_text(json.dumps(dict(cells=[exp('def f(): pass\nclass G: pass'), exp('def h(): pass')])))
    p = notebook_problems(nb)
    assert any('2 public definitions' in s for s in p) and sum('no markdown' in s for s in p) == 2
    assert sum('no test' in s for s in p) == 2
    pkg = tmp_path / 'saharank'
    pkg.mkdir()
    (pkg / 'm.py').write_text('def long():\n' + '    x = 1\n' * 80 + '\ndef short():\n    pass\n')
    assert long_functions(tmp_path) == ['saharank/m.py:1 long (81 lines)']


if __name__ == '__main__':
    paths = [Path(a) for a in sys.argv[1:]] or NOTEBOOKS
    for p in paths: print('\n'.join(notebook_problems(p)))
