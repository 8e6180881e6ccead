"""Build the documentation site offline: execute the notebooks (cached), assemble the Sphinx source, run Sphinx.

    python tools/docs/build.py [--out _docs] [--workers 2] [--no-cache]
    python tools/docs/build.py --execute-only --refresh     # the notebook tests of .ci/test: every notebook
                                                              run, cached

With `--execute-only` it stops after step 1: every notebook executed as `nbdev-test` executes it, exit 1 naming each
notebook that failed; `--refresh` runs every notebook even when the cache holds it, and stores the results, so that
a site built afterwards (`.ci/docs`) takes them from the cache instead of running the notebooks a second time.

Steps (see docs/README.md for the why):
1. every `nbs/*.ipynb` is executed as `nbdev-test` runs it (nbdev's own cell selection: cells flagged with
   `tst_flags`, i.e. `notest` and `slow`, are skipped; working directory `nbs/`) and saved with its outputs
   into `_docs/executed/`. A notebook is executed again only when it, the package (`saharank/*.py`),
   `settings.ini` or this script changed: the outputs are cached in `.docs-cache/` under a hash of those.
2. `_docs/src/` is assembled: the executed notebooks (directive lines `#| ...` turned into a readable comment,
   hidden cells dropped, widget views dropped: a static page has no kernel), `nbs/index.ipynb` as the home
   page with the site's table of contents, one API page per module (autodoc), one page per committed
   report (`figures/smoke*`: its tables and figures), the figures themselves.
3. `sphinx-build` (configuration `docs/conf.py`) writes the static site to `_docs/site/`.
Exit status 1 when a notebook fails (its traceback is printed) or Sphinx fails.
"""
from __future__ import annotations
import argparse, hashlib, json, os, re, shutil, subprocess, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NBS = ROOT / 'nbs'
REPORTS = {  # committed report folders -> page title
    'smoke': 'The smoke run (1 training replicate)',
    'smoke-3replicates': 'The smoke run with 3 training replicates',
    'smoke-ranks': 'The smoke run with all eight ranks (Fig. 4)',
    'smoke-seed1': 'The smoke run on a second cohort draw (seed 1)',
    'smoke-long': 'The smoke run trained three times as long',
    'smoke-long-seed1': 'The smoke run trained three times as long, second cohort draw',
    'smoke-long-noise16': 'The smoke run trained three times as long, with noise up to 16 HU in training',
    'smoke-long-noise16-seed1': 'The smoke run trained three times as long, noise up to 16 HU, second cohort draw',
}
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'


def _skip_flags() -> list[str]:
    from nbdev.config import get_config
    flags = get_config(ROOT).tst_flags
    return flags.split() if isinstance(flags, str) else list(flags or [])


def cache_key(nb: Path) -> str:
    "sha256 of the notebook, the package sources, settings.ini, pyproject.toml and this script."
    h = hashlib.sha256()
    for p in [nb, ROOT / 'settings.ini', ROOT / 'pyproject.toml', Path(__file__).resolve(),
              *sorted((ROOT / 'saharank').glob('*.py'))]:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:24]


def execute_one(src: str, dest: str, threads: int) -> tuple[str, bool, float, str]:
    "Run the notebook `src` as nbdev-test does and write it with its outputs to `dest` (in a fresh process)."
    os.environ.setdefault('OMP_NUM_THREADS', str(threads))
    os.environ['IN_TEST'] = '1'
    from execnb.shell import CaptureShell
    from fastcore.nbio import write_nb
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    from nbdev.test import _skip_cell
    src = Path(src)
    t0 = time.time()
    nb = NBProcessor(src, rm_directives=False, process=True).nb
    skip = _skip_cell(nb, _skip_flags())
    shell = CaptureShell(src)
    try:
        with working_directory(src.parent):
            shell.run_all(nb, exc_stop=True, preproc=skip, cell_timeout=600)
    except BaseException:
        import traceback
        return src.name, False, time.time() - t0, shell.prettytb(fname=src) or traceback.format_exc()
    for c in nb.cells:  # remember which cells ran, for the page (a skipped cell says so)
        if c.cell_type == 'code': c.metadata['saharank_skipped'] = bool(skip(c))
        c.pop('directives_', None)
    write_nb(nb, dest)
    return src.name, True, time.time() - t0, ''


def execute_all(out: Path, cache: Path | None, workers: int, refresh: bool = False) -> dict:
    """Execute (or take from the cache) every notebook of nbs/ into out/; returns {name: seconds or 'cached'}.
    `refresh`: execute every notebook, and store the results in the cache."""
    out.mkdir(parents=True, exist_ok=True)
    todo, timing = [], {}
    for nb in sorted(NBS.glob('*.ipynb')):
        dest = out / nb.name
        hit = cache / f"{nb.stem}-{cache_key(nb)}.ipynb" if cache else None
        if hit is not None and hit.is_file() and not refresh:
            shutil.copyfile(hit, dest)
            timing[nb.name] = 'cached'
        else: todo.append((nb, dest, hit))
    todo.sort(key=lambda t: -t[0].stat().st_size)          # the big notebooks first
    failed = []
    threads = max(1, (os.cpu_count() or 2) // max(1, workers))
    # one process per notebook (IPython's shell takes over __main__ in the process that ran one)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context('spawn'), max_tasks_per_child=1) as ex:
        futs = {ex.submit(execute_one, str(nb), str(dest), threads): (nb, dest, hit) for nb, dest, hit in todo}
        for f in as_completed(futs):
            nb, dest, hit = futs[f]
            name, ok, secs, tb = f.result()
            timing[name] = round(secs, 1)
            print(f"  executed {name}: {secs:.1f} s{'' if ok else ' FAILED'}", flush=True)
            if not ok:
                failed.append(name)
                print(tb, file=sys.stderr)
            elif hit is not None:
                cache.mkdir(parents=True, exist_ok=True)
                for old in cache.glob(f"{nb.stem}-*.ipynb"): old.unlink()
                shutil.copyfile(dest, hit)
    if failed: raise SystemExit(f"docs: {len(failed)} notebook(s) failed: {', '.join(failed)}")
    return timing


_DIRECTIVE = re.compile(r'^\s*#\|\s*(\S+)(.*)$')


def page_notebook(src: Path, dest: Path):
    "The executed notebook `src` as a page: directives made readable, hidden cells and widget views dropped."
    nb = json.loads(src.read_text())
    m = re.search(r'#\|\s*default_exp\s+(\S+)',
                  ''.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'))
    module = f"saharank.{m.group(1)}" if m else 'the package'
    cells = []
    for c in nb['cells']:
        text = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
        if c['cell_type'] == 'code':
            lines = text.splitlines()
            directives = [m.group(1) for m in map(_DIRECTIVE.match, lines) if m]
            if 'hide' in directives or 'default_exp' in directives and len(lines) == len(directives): continue
            body = [l for l in lines if not _DIRECTIVE.match(l)]
            notes = []
            if 'export' in directives or 'exports' in directives:
                notes.append(f"# exported to {module}")
            if c.get('metadata', {}).pop('saharank_skipped', False):
                flags = [d for d in directives if d in ('slow', 'notest')]
                notes.append(f"# not run when this page was built ({', '.join(flags) or 'skipped'}: see `tst_flags`)")
            c['source'] = '\n'.join(notes + body)
            outs = []
            for o in c.get('outputs', []):
                data = o.get('data')
                if data is not None and WIDGET_MIME in data:
                    data.pop(WIDGET_MIME)
                    if not data: continue
                outs.append(o)
            c['outputs'] = outs
        cells.append(c)
    nb['cells'] = cells
    nb.setdefault('metadata', {})['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    nb['metadata']['language_info'] = {'name': 'python'}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(nb, indent=1))


def report_page(name: str, title: str, dest: Path):
    "A page of the committed report figures/<name>: its tables (the report's .md files) and figures."
    folder = ROOT / 'figures' / name
    parts = [f"# {title}\n",
             f"The report `saharank reproduce` wrote for this run, as committed in `figures/{name}/` "
             "(made on a CPU; see the README for the machine, the wall time and what the numbers mean). "
             "Every number is ours, on our cohorts; the paper's numbers appear only in the *side by side* "
             "tables, labelled as the paper's.\n"]
    for png in sorted(folder.glob('*.png')):
        parts.append(f"## {png.stem.replace('_', ' ')}\n\n![{png.stem}]({name}/{png.name})\n")
    for md in sorted(folder.glob('*.md')):
        body = re.sub(r'^(#+)', r'##\1', md.read_text(), flags=re.M)   # the table's own headings below ours
        parts.append(f"## {md.stem.replace('_', ' ')}\n\n(`figures/{name}/{md.name}`)\n\n{body}\n")
    dest.write_text('\n'.join(parts))


def assemble(executed: Path, src: Path):
    "Write the Sphinx source tree src/ from the executed notebooks, the package and figures/."
    if src.exists(): shutil.rmtree(src)
    (src / 'nbs').mkdir(parents=True)
    import saharank._modidx as mi
    for nb in sorted(executed.glob('*.ipynb')): page_notebook(nb, src / 'nbs' / nb.name)
    # the home page's table of contents (not in nbs/index.ipynb itself: GitHub would show the directive)
    names = [p.stem for p in sorted((src / 'nbs').glob('*.ipynb')) if p.stem != 'index']
    index = json.loads((src / 'nbs' / 'index.ipynb').read_text())
    toc = ["```{toctree}", ":caption: Notebooks", ":maxdepth: 1", "", *names, "```", "",
           "```{toctree}", ":caption: Results", ":maxdepth: 1", "", *[f"../figures/{n}" for n in REPORTS], "```", "",
           "```{toctree}", ":caption: Reference", ":maxdepth: 1", "", "../api/index", "```"]
    index['cells'].append({'cell_type': 'markdown', 'id': 'sitetoc0', 'metadata': {}, 'source': '\n'.join(toc)})
    (src / 'nbs' / 'index.ipynb').write_text(json.dumps(index, indent=1))
    # figures: copied as they are (the notebooks link to ../figures/...), one page per report
    shutil.copytree(ROOT / 'figures', src / 'figures')
    for name, title in REPORTS.items(): report_page(name, title, src / 'figures' / f'{name}.md')
    # API reference: one autodoc page per exported module
    (src / 'api').mkdir()
    mods = sorted(mi.d['syms'])
    for mod in mods:
        (src / 'api' / f'{mod}.md').write_text(
            f"# `{mod}`\n\n```{{eval-rst}}\n.. automodule:: {mod}\n   :members:\n   :undoc-members:\n```\n")
    (src / 'api' / 'index.md').write_text(
        "# API reference\n\nThe package's modules, from their docstrings (autodoc). Each is exported from a notebook "
        "of `nbs/` (the source of truth), whose page shows the same code with its tests and outputs.\n\n"
        "```{toctree}\n:maxdepth: 1\n\n" + '\n'.join(mods) + "\n```\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', default=str(ROOT / '_docs'), help='build folder (default _docs/)')
    ap.add_argument('--workers', type=int, default=2, help='notebooks executed at once (default 2)')
    ap.add_argument('--no-cache', action='store_true', help='execute every notebook, ignoring .docs-cache/')
    ap.add_argument('--refresh', action='store_true',
                    help='execute every notebook and store the results in .docs-cache/')
    ap.add_argument('--execute-only', action='store_true',
                    help='only execute the notebooks (the tests of .ci/test): no site')
    a = ap.parse_args(argv)
    out = Path(a.out)
    t0 = time.time()
    cache = 'off' if a.no_cache else '.docs-cache/' + (', refreshed' if a.refresh else '')
    print(f"== docs: executing the notebooks ({a.workers} at once; cache {cache})", flush=True)
    timing = execute_all(out / 'executed', None if a.no_cache else ROOT / '.docs-cache', a.workers, a.refresh)
    t1 = time.time()
    n_cached = sum(v == 'cached' for v in timing.values())
    print(f"   {len(timing)} notebooks in {t1 - t0:.0f} s ({n_cached} from the cache)", flush=True)
    (out / 'execution_times.json').write_text(json.dumps(timing, indent=1))
    if a.execute_only: return
    assemble(out / 'executed', out / 'src')
    print("== docs: sphinx-build", flush=True)
    site = out / 'site'
    if site.exists(): shutil.rmtree(site)
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-j', 'auto', '-c', str(ROOT / 'docs'),
                        '-w', str(out / 'sphinx-warnings.log'), str(out / 'src'), str(site)])
    if r.returncode:
        raise SystemExit(f"docs: sphinx-build failed ({r.returncode}); warnings in {out / 'sphinx-warnings.log'}")
    warns = [l for l in (out / 'sphinx-warnings.log').read_text().splitlines() if 'WARNING' in l]
    print(f"   site in {site} ({sum(1 for _ in site.rglob('*.html'))} HTML files, {len(warns)} Sphinx warnings: "
          f"{out / 'sphinx-warnings.log'}) in {time.time() - t1:.0f} s", flush=True)


if __name__ == '__main__':
    main()
