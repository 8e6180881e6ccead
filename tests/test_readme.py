"""README.md keeps its promises: its size, a quickstart whose printed output is the one shown, result numbers that the
committed files still hold, links that resolve, and a citation that matches the package.

How a result number is declared. The README's results table (the Markdown table whose header starts with
`| result`) has one row per result: `| what | value | source |`. The source cell holds backticked tokens: the
committed file first (a path from the repository root), then where in it:

- a `.csv` or `.md` table with a row and a column: `` `figures/smoke/table3.csv` `LoRA-C64` `All` `` -- the row
  whose first cell is `LoRA-C64`, the column headed `All`; the cell's leading number must be the value exactly as
  written (`0.691` for the cell `0.691 (0.14)`). A last token `max` or `min` also requires that cell to be the
  column's largest or smallest decimal number (so "the best adapter" cannot silently stop being the best);
- a `.csv` file with one column name: `` `figures/smoke/findings.csv` `verdict` `` -- the value counts that
  column's entries, written as `holds 4, inconclusive 4, does not hold 2`;
- a `.json` file with a dotted key path: `` `figures/smoke/report_provenance.json` `run_provenance.device_name` ``
  -- the value equals what the path holds (numbers compared as numbers).

Any number with three or more decimals elsewhere in the README's text (outside code blocks) must be one of the
declared values, so that no result is quoted without a source. When `figures/smoke/` is regenerated, the failure
names each stale number, its README line, the file and cell to read the new value from.
"""
import csv
import difflib
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / 'README.md'
FENCE = re.compile(r'^```(\S*)\s*$')
NUMBER = re.compile(r'-?\d+(?:\.\d+)?')


def _lines() -> list[str]:
    return README.read_text(encoding='utf-8').splitlines()


def _blocks(lines: list[str]) -> list[tuple[str, int, list[str]]]:
    "The fenced code blocks: (language, line number of the opening fence (1-based), body lines)."
    out, lang, start, body = [], None, 0, []
    for i, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if lang is None and m:
            lang, start, body = m.group(1), i, []
        elif lang is not None and line.strip() == '```':
            out.append((lang, start, body))
            lang = None
        elif lang is not None:
            body.append(line)
    assert lang is None, f"README.md: the code block opened at line {start} is never closed"
    return out


def _prose(lines: list[str]) -> list[tuple[int, str]]:
    "(line number, text) of the lines outside fenced code blocks."
    inside, out = False, []
    for i, line in enumerate(lines, 1):
        if FENCE.match(line) or (inside and line.strip() == '```'):
            inside = not inside
        elif not inside:
            out.append((i, line))
    return out


def test_readme_size():
    "README.md: at most 150 lines, each at most 119 characters, at most 1,500 words."
    lines = _lines()
    long = [f"line {i}: {len(l)} characters" for i, l in enumerate(lines, 1) if len(l) > 119]
    assert not long, "README.md lines over 119 characters:\n" + '\n'.join(long)
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150: move detail to docs/guide.md)"
    words = len(README.read_text(encoding='utf-8').split())
    assert words <= 1500, f"README.md has {words} words (at most 1,500: move detail to docs/guide.md)"


def _quickstart(lines: list[str]) -> tuple[int, str, list[str]]:
    "The quickstart: the first python block after the heading '## Quickstart' and the text block right after it."
    head = next(i for i, l in enumerate(lines, 1) if l.strip() == '## Quickstart')
    blocks = [b for b in _blocks(lines) if b[1] > head]
    i = next(k for k, b in enumerate(blocks) if b[0] == 'python')
    assert i + 1 < len(blocks) and blocks[i + 1][0] == 'text', \
        f"README.md: the quickstart's python block (line {blocks[i][1]}) needs its output after it: a ```text block"
    return blocks[i][1], '\n'.join(blocks[i][2]) + '\n', blocks[i + 1][2]


def test_quickstart_output(tmp_path):
    "The README's quickstart, run as a reader pastes it (a fresh interpreter), prints exactly the output shown."
    line, code, shown = _quickstart(_lines())
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])]),
           'OMP_NUM_THREADS': '1', 'PYTHONWARNINGS': 'ignore'}
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, f"README.md's quickstart (line {line}) failed:\n{r.stderr[-3000:]}"
    printed = r.stdout.rstrip('\n').splitlines()
    want = [l.rstrip() for l in shown]
    assert [l.rstrip() for l in printed] == want, (
        f"README.md's quickstart (line {line}) printed other output than the README shows; update its ```text block:\n"
        + '\n'.join(difflib.unified_diff(want, printed, 'README.md', 'printed', lineterm='')))


# ---- result numbers ----

def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip('|').split('|')]


def _results(lines: list[str]) -> list[dict]:
    "The rows of the README's results table: line, what, value, file, locator tokens."
    head = [i for i, l in enumerate(lines) if l.startswith('| result')]
    assert len(head) == 1, f"README.md needs one results table whose header starts with '| result' (found {len(head)})"
    rows = []
    for i in range(head[0] + 2, len(lines)):
        if not lines[i].startswith('|'): break
        cells = _cells(lines[i])
        assert len(cells) == 3, f"README.md line {i + 1}: a results row has 3 cells (what, value, source): {lines[i]}"
        tokens = re.findall(r'`([^`]+)`', cells[2])
        assert len(tokens) >= 2, f"README.md line {i + 1}: the source cell needs `file` and where in it: {cells[2]}"
        rows.append(dict(line=i + 1, what=cells[0], value=cells[1], file=tokens[0], where=tokens[1:]))
    assert rows, "README.md: the results table has no rows"
    return rows


def _table(path: Path) -> tuple[list[str], list[list[str]]]:
    "A CSV file or the first Markdown pipe table of a .md file: (header, rows)."
    if path.suffix == '.csv':
        with path.open(newline='', encoding='utf-8') as f: rows = list(csv.reader(f))
        return rows[0], rows[1:]
    lines = [l for l in path.read_text(encoding='utf-8').splitlines() if l.startswith('|')]
    rows = [_cells(l) for l in lines if not re.fullmatch(r'[|\s:-]+', l)]
    return rows[0], rows[1:]


def _lead(cell: str) -> str | None:
    m = NUMBER.match(cell.strip())
    return m.group(0) if m else None


def _check_cell(r: dict, path: Path) -> str | None:
    "None when the table's cell holds the README's value (and is the column's max/min when asked), else why not."
    header, rows = _table(path)
    row, col, *extra = r['where']
    if col not in header: return f"{r['file']} has no column {col!r} (columns: {header})"
    j = header.index(col)
    hit = [x for x in rows if x and x[0] == row]
    if not hit: return f"{r['file']} has no row {row!r} (rows: {[x[0] for x in rows if x]})"
    cell = hit[0][j]
    where = f"{r['file']}, row {row!r}, column {col!r}"
    if _lead(cell) != r['value']: return f"{where} holds {cell!r}"
    for rule in extra:
        nums = [float(x[j].split()[0]) for x in rows if len(x) > j and _lead(x[j]) and '.' in _lead(x[j])]
        best = {'max': max, 'min': min}[rule](nums)
        if float(r['value']) != best:
            winner = next(x[0] for x in rows if len(x) > j and _lead(x[j]) and float(_lead(x[j])) == best)
            return f"{where} is no longer the column's {rule}: {winner!r} holds {best} (reword the row's label too)"
    return None


def _check_count(r: dict, path: Path) -> str | None:
    "None when the README's 'label N, label N' equals the counts of the CSV column's entries, else why not."
    with path.open(newline='', encoding='utf-8') as f: rows = list(csv.DictReader(f))
    col = r['where'][0]
    if rows and col not in rows[0]: return f"{r['file']} has no column {col!r}"
    have = dict(Counter(x[col] for x in rows))
    said = {k.strip(): int(n) for k, n in re.findall(r'([^,\d]+?)\s+(\d+)', r['value'])}
    if said != have: return f"{r['file']}, column {col!r}, counts " + ', '.join(f"{k} {n}" for k, n in have.items())
    return None


def _check_json(r: dict, path: Path) -> str | None:
    "None when the dotted key path of the JSON file holds the README's value, else why not."
    v = json.loads(path.read_text(encoding='utf-8'))
    key = r['where'][0]
    for k in key.split('.'):
        if not isinstance(v, dict) or k not in v: return f"{r['file']} has no key {key!r}"
        v = v[k]
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    same = float(r['value']) == float(v) if number else r['value'] == str(v)
    return None if same else f"{r['file']}, key {key!r}, holds {v!r}"


def test_result_numbers():
    "Every row of the README's results table holds the value its committed source file holds now."
    stale = []
    for r in _results(_lines()):
        path = ROOT / r['file']
        if not path.is_file(): why = f"{r['file']} does not exist"
        elif path.suffix == '.json': why = _check_json(r, path)
        elif path.suffix == '.csv' and len(r['where']) == 1: why = _check_count(r, path)
        elif path.suffix in ('.csv', '.md') and len(r['where']) >= 2: why = _check_cell(r, path)
        else: why = f"cannot read a value from {r['file']} at {r['where']} (see this test's docstring)"
        if why: stale.append(f"README.md line {r['line']}: {r['what']!r} = {r['value']!r}, but {why}")
    assert not stale, ("stale numbers in README.md (update the README's results table and any prose quoting them "
                       "from the file named, or restore the file):\n" + '\n'.join(stale))


def test_no_undeclared_numbers():
    "Every number with 3+ decimals in the README's text is a value of its results table (a result with a source)."
    lines = _lines()
    declared = {r['value'] for r in _results(lines)}
    loose = [f"line {i}: {m}" for i, text in _prose(lines) for m in re.findall(r'(?<![\d.])\d+\.\d{3,}(?![\d.])', text)
             if m not in declared]
    assert not loose, ("numbers in README.md without a source: add each to the results table (with its file and "
                       "cell) or drop it:\n" + '\n'.join(loose))


def _slug(heading: str) -> str:
    "GitHub's anchor for a Markdown heading."
    return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_links_resolve():
    "Every relative link and image of the README points at a committed file (and an existing heading for #anchors)."
    bad = []
    for i, text in _prose(_lines()):
        for target in re.findall(r'\]\(([^)\s]+)\)', text):
            if re.match(r'[a-z]+://', target) or target.startswith('#'): continue
            file, _, anchor = target.partition('#')
            path = ROOT / file
            if not path.exists():
                bad.append(f"line {i}: {target} (no such file)")
                continue
            if anchor:
                text_ = path.read_text(encoding='utf-8')
                heads = [_slug(h.lstrip('#')) for h in text_.splitlines() if h.startswith('#')]
                if anchor not in heads: bad.append(f"line {i}: {target} (no heading #{anchor} in {file})")
    assert not bad, "README.md links that do not resolve:\n" + '\n'.join(bad)


def test_citation():
    "CITATION.cff names the package's version and licence; the README links the authors' code and cites the paper."
    cff = (ROOT / 'CITATION.cff').read_text(encoding='utf-8')
    version = re.search(r'__version__\s*=\s*"([^"]+)"', (ROOT / 'saharank' / '__init__.py').read_text()).group(1)
    license_ = re.search(r'^license\s*=\s*"([^"]+)"', (ROOT / 'pyproject.toml').read_text(), re.M).group(1)
    assert re.search(rf'^version:\s*"?{re.escape(version)}"?\s*$', cff, re.M), f"CITATION.cff: version not {version}"
    assert re.search(rf'^license:\s*{re.escape(license_)}\s*$', cff, re.M), f"CITATION.cff: license is not {license_}"
    assert cff.startswith('cff-version: 1.2.0'), "CITATION.cff: starts with cff-version: 1.2.0"
    text = README.read_text(encoding='utf-8')
    code = 'github.com/Minoch/LoRA-based-methods-SAH-segmentation'
    assert code in text and code in cff, f"the authors' code ({code}) must be linked in README.md and CITATION.cff"
    bib = [b for b in _blocks(_lines()) if b[0] == 'bibtex']
    assert bib and any('Subarachnoid Hematoma Segmentation' in l for l in bib[0][2]), "README.md: a BibTeX block"
    try:
        import yaml
    except ImportError:
        pytest.skip("PyYAML not installed: CITATION.cff checked line by line only")
    data = yaml.safe_load(cff)
    assert data['type'] == 'software' and data['authors'] and data['title'], "CITATION.cff: type, authors, title"
