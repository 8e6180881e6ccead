"""Does the smoke run's short training set its numbers? [smoke] (pre-training 6 epochs, fine-tuning 3) against
[smoke-long] (18 and 9), everything else alike, on both cohort draws ([smoke-seed1], [smoke-long-seed1]) (issue #28).

    python bench/training_length.py --reuse smoke=runs/smoke --reuse smoke-seed1=runs/smoke-seed1
    python bench/training_length.py --table-only       # the table from the runs already in --runs

Each profile missing from --runs (runs/PROFILE) is `saharank reproduce --profile PROFILE --no-bench` (a smoke-long
run takes about 25 min on 2 cores; run it on a quiet machine). Prints and writes (--figures, default
figures/training-length/) training_length.csv, .md and _provenance.json: per profile and selected model (Table 2's
best strategy, Table 3's best adapter) the mean Dice over the 30 SAH patients, the robustness report's median
|volume change| (%) and mean Dice per perturbation, the held-out heads' Dice in -> out and volume error, and the
clean held-out head's mL called blood (network alone / post-processed), as `bench/noise_augmentation.py` reads them;
the volume changes also as ratios to [smoke] of the same draw and role. Nothing is asserted.
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from noise_augmentation import summary  # noqa: E402
from variants import SETTINGS, markdown_table, run_variant, write_runs_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PROFILES = ('smoke', 'smoke-long', 'smoke-seed1', 'smoke-long-seed1')
SHORT = {'smoke-long': 'smoke', 'smoke-long-seed1': 'smoke-seed1'}     # each long profile's short one


def rows(folders: dict, ini: Path = SETTINGS) -> pd.DataFrame:
    """The table: `summary`'s rows of each run folder (profile -> folder), which must have been made with that
    profile's epochs and cohort seed (from `ini`; exits naming the folder otherwise), with the profile and epochs
    in front and each volume change's ratio to the short profile of the same cohort seed (`SHORT`) and role (None
    where that profile is not in `folders` or its change is 0)."""
    from saharank.settings import load_settings
    out = []
    for profile, folder in folders.items():
        s = load_settings(profile, ini)
        ran = json.loads((Path(folder) / 'provenance.json').read_text())['settings']
        if ran['pretrain_epochs'] != s.pretrain_epochs:
            sys.exit(f"{folder}: pre-trained {ran['pretrain_epochs']} epochs, [{profile}] {s.pretrain_epochs}")
        for r in summary('finetune_epochs', s.finetune_epochs, Path(folder), s.finetune_epochs, s.seed):
            r.pop('finetune_epochs')
            out.append({'profile': profile, 'epochs (pre-training / fine-tuning)':
                        f'{s.pretrain_epochs} / {s.finetune_epochs}'} | r)
    t = pd.DataFrame(out)
    for c in [c for c in t.columns if c.endswith('volume change %')]:
        ref = dict(zip(zip(t.profile, t.selected), t[c]))
        base = [ref.get((SHORT.get(p, p), sel)) for p, sel in zip(t.profile, t.selected)]
        t[c.replace('volume change %', 'ratio to smoke')] = [round(v / b, 2) if b else None
                                                             for v, b in zip(t[c], base)]
    return t


def write(t: pd.DataFrame, fig: Path, folders: dict, command: str) -> None:
    "The table `t` as training_length.csv and .md in `fig`, and the runs' provenance beside it."
    cols = [f'{p} {m}' for p, m in zip(t.profile, t.model)]
    write_runs_table(t, fig, 'training_length',
        "# Training length: the smoke run trained three times as long (ours: saharank's cohorts, smoke size; not the "
        "paper's)\n\nPer profile (cohort seed 0: smoke, smoke-long; seed 1: smoke-seed1, smoke-long-seed1) and "
        "selected model: mean Dice over the 30 SAH patients, per perturbation of the robustness report the median "
        "|volume change| (%, cross-validation test folds) and mean Dice, its ratio to the same draw's smoke profile; "
        "the clean held-out head's mL called blood (leave-one-head-out: network alone, post-processed; summed over "
        "the held-out heads) and the held-out heads' Dice and volume error. Command: "
        f"`{command}` (`bench/training_length.py`).\n\n"
        + markdown_table(t.T.reset_index().set_axis(['', *cols], axis=1)), folders, command)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--runs', default='runs', help='folder of the runs (runs/PROFILE)')
    ap.add_argument('--reuse', action='append', default=[], metavar='PROFILE=FOLDER',
                    help="take PROFILE's run from this folder")
    ap.add_argument('--figures', default=str(ROOT / 'figures' / 'training-length'))
    ap.add_argument('--table-only', action='store_true')
    a = ap.parse_args(argv)
    reuse = dict(r.split('=', 1) for r in a.reuse)
    folders = {p: Path(reuse.get(p, Path(a.runs) / p)) for p in PROFILES}
    for p, out in folders.items():
        if not a.table_only and not (out / 'report' / 'robustness_per_patient.csv').is_file():
            run_variant(p, SETTINGS, out, '--no-bench', log='training_length.log')
    t = rows(folders)
    write(t, Path(a.figures), folders, ' '.join(['python', 'bench/training_length.py', *(argv or sys.argv[1:])]))
    print(t.T.to_string(header=False))


if __name__ == '__main__':
    main()
