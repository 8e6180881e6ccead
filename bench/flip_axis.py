"""Which way the training flips: the same profile trained by engine 4 (the flip augmentation mirrored each slice front
to back) and engine 5 (left-right, the paper's "random horizontal flipping"), on both cohort draws (issue #28).

    python bench/flip_axis.py --before smoke=OLD/smoke --before smoke-seed1=OLD/smoke-seed1 \
                              --after smoke=runs/smoke --after smoke-seed1=runs/smoke-seed1

Engine 4 is gone from the package: its runs are made with a checkout of a commit before engine 5 (`git worktree add
OLD 465354b`, then `saharank reproduce --profile PROFILE --out OLD/PROFILE` there). Each run's provenance.json must
name its engine (4 before, 5 after) and the profile given (a report committed under figures/ serves as a run);
compare runs of one machine (another CPU type moves these rows too, bench/README.md). Prints and writes (--figures,
default figures/flip-axis/) flip_axis.csv, .md, _tables.csv and _provenance.json: per profile, engine and selected
model (Table 2's best strategy, Table 3's best adapter) the rows of `bench/noise_augmentation.py` (mean Dice, the
robustness report's median |volume change| and Dice per perturbation, the held-out heads' Dice and volume error, the
clean held-out head's mL), and per profile every row of Tables 2-3 (column All) and the findings' verdicts before
and after. Nothing is asserted.
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from noise_augmentation import is_report, summary  # noqa: E402
from variants import markdown_table, write_runs_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENGINES = {'before': 4, 'after': 5}


def checked(folder: Path, profile: str, engine: int) -> dict:
    """The run's settings from its provenance.json (a report committed under figures/: its report_provenance.json's
    run_provenance); exits naming the folder unless it ran `profile` with `engine`."""
    prov = (json.loads((folder / 'report_provenance.json').read_text())['run_provenance'] if is_report(folder)
            else json.loads((folder / 'provenance.json').read_text()))
    if prov.get('engine_version') != engine:
        sys.exit(f"{folder}: engine {prov.get('engine_version')}, not {engine}")
    if prov['profile'] != profile: sys.exit(f"{folder}: profile {prov['profile']}, not {profile}")
    return prov['settings']


def model_rows(runs: dict) -> pd.DataFrame:
    """`summary`'s rows (selected models) of each run, runs = {(profile, 'before' | 'after'): folder}, with the
    profile and engine in front."""
    out = []
    for (profile, when), folder in runs.items():
        s = checked(Path(folder), profile, ENGINES[when])
        for r in summary('finetune_epochs', s['finetune_epochs'], Path(folder), s['finetune_epochs'], s['seed']):
            r.pop('finetune_epochs')
            out.append({'profile': profile, 'engine': ENGINES[when]} | r)
    return pd.DataFrame(out)


def table_rows(runs: dict) -> pd.DataFrame:
    """Every row of Tables 2-3 (mean Dice, column All) and the count of each findings verdict, one column per run
    ('PROFILE, engine N'), with the change after - before per profile; runs = {(profile, 'before' | 'after'):
    folder or committed report}."""
    cols = {}
    for (profile, when), folder in runs.items():
        col = {}
        for table in ('table2.csv', 'table3.csv'):
            t = pd.read_csv(Path(folder) / table, index_col=0, keep_default_na=False).drop(index='Number of Patients')
            col |= {f"{table[:6].replace('table', 'Table ')}: {m}": float(str(v).split()[0])
                    for m, v in t['All'].items()}
        report = Path(folder) if is_report(Path(folder)) else Path(folder) / 'report'
        verdicts = pd.read_csv(report / 'findings.csv').verdict.value_counts()
        col |= {f'findings: {v}': int(verdicts.get(v, 0))
                for v in ('holds', 'inconclusive', 'does not hold', 'cannot be tested')}
        cols[f'{profile}, engine {ENGINES[when]}'] = col
    t = pd.DataFrame(cols)
    for profile in dict.fromkeys(p for p, _ in runs):
        b, a = f'{profile}, engine 4', f'{profile}, engine 5'
        if b in t and a in t: t[f'{profile}: change'] = (t[a] - t[b]).round(3)
    return t


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--before', action='append', default=[], metavar='PROFILE=FOLDER', help='a run of engine 4')
    ap.add_argument('--after', action='append', default=[], metavar='PROFILE=FOLDER', help='a run of engine 5')
    ap.add_argument('--figures', default=str(ROOT / 'figures' / 'flip-axis'))
    a = ap.parse_args(argv)
    runs = {(p, when): Path(f) for when in ('before', 'after')
            for p, f in (r.split('=', 1) for r in getattr(a, when))}
    if not runs: ap.error('give runs with --before and --after')
    models, tables = model_rows(runs), table_rows(runs)
    command = ' '.join(['python', 'bench/flip_axis.py', *(argv or sys.argv[1:])])
    cols = [f'{p} e{e} {m}' for p, e, m in zip(models.profile, models.engine, models.model)]
    md = ("# Which way the training flips: engine 4 (front to back) against engine 5 (left-right) (ours: saharank's "
          "cohorts, smoke size; not the paper's)\n\nThe same profile trained by each engine on one machine. Tables "
          "2-3 (mean Dice over the 30 SAH patients, column All) and the findings' verdicts per run:\n\n"
          + markdown_table(tables.reset_index().rename(columns={'index': ''}))
          + "\nPer selected model (Table 2's best strategy, Table 3's best adapter): mean Dice, per perturbation of "
          "the robustness report the median |volume change| (%, cross-validation test folds) and mean Dice, the "
          "clean held-out head's mL called blood (leave-one-head-out: network alone, post-processed; summed over the "
          "held-out heads) and the held-out heads' Dice and volume error. Command: "
          f"`{command}` (`bench/flip_axis.py`).\n\n"
          + markdown_table(models.T.reset_index().set_axis(['', *cols], axis=1)))
    fig = Path(a.figures)
    write_runs_table(models, fig, 'flip_axis', md, {f'{p} ({w})': f for (p, w), f in runs.items()}, command)
    tables.to_csv(fig / 'flip_axis_tables.csv')
    print(tables.to_string())
    print(models.T.to_string(header=False))


if __name__ == '__main__':
    main()
