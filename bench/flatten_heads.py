"""Is what keeps a model from an unseen head the skull's HU profile? The smoke run with each head's parenchyma HU
flattened against the distance from bone (setting `flatten_bone_profile`) beside the same run without (issue #28:
held-out-head Dice and clean held-out heads).

    python bench/flatten_heads.py --baseline runs/smoke-unflat --out runs/smoke   # both runs (about 10 min each)
    python bench/flatten_heads.py --baseline runs/smoke-s16 --out runs/smoke --table-only

dicom2stl's ct_head is brighter near bone than Cranium (its parenchyma 0-6 mm from bone at a median 41-53 HU after
calibration, Cranium's at 26-29; 10-15 mm from bone in the lowest third of the intracranial space 35 HU against 30:
cupping and beam hardening of the skull base). `saharank.cohort.flatten_bone_profile` removes that profile: per axial
slab of 20 mm, the slab's deep parenchyma (>= 25 mm from bone, else >= 15 mm) is brought to the head's, and the excess
median HU of the parenchyma in distance shells (0-3, 3-6, 6-10, 10-15, 15-25 mm) over that deep parenchyma is
subtracted from every intracranial voxel, interpolated over the distance. This benchmark found it (first as its own
code, on the template heads), and the package took it up: with `flatten_bone_profile = true` ([smoke], [gpu]) the
cohorts are made from flattened heads and `saharank predict` flattens every scan with labels from its HU
(`saharank.cohort.head_labels`), as the leave-one-head-out check reads its clean held-out head. `--baseline` is a smoke
run with the setting off (made here when it does not exist), `--out` one with it on (made unless --table-only). Prints
and writes (--figures, default figures/flatten-heads/) flatten_heads.csv / .md and a provenance JSON: for both runs,
Table 2's and Table 3's best Dice, the held-out rows and the robustness rows (`resolution.held_out`,
`resolution.robustness`).
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resolution import held_out, robustness  # noqa: E402
from variants import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_smoke(out: Path, flatten: bool) -> None:
    """`saharank reproduce --profile smoke --out OUT --quiet` in this process with the setting `flatten_bone_profile`
    forced to `flatten`."""
    import saharank.experiment as experiment
    from saharank.cli import main as cli
    load = experiment.load_settings
    experiment.load_settings = lambda *a, **kw: load(*a, **kw).replace(flatten_bone_profile=flatten)
    try:
        if cli(['reproduce', '--profile', 'smoke', '--out', str(out), '--quiet']):
            sys.exit(f"{out}: reproduce (flatten_bone_profile {flatten}) failed")
    finally:
        experiment.load_settings = load


def summary(run: Path) -> dict:
    """One column of the table: the run's best strategy and adapter (mean Dice over its SAH patients), its held-out
    rows and its robustness rows."""
    per = pd.read_csv(run / 'per_patient.csv', usecols=['model', 'experiment', 'dice'])
    row = {}
    for exp, label in (('strategy', 'Table 2 best strategy'), ('adapter', 'Table 3 best adapter')):
        d = per[per.experiment == exp].groupby('model').dice.mean()
        row[f'{label} (model, Dice)'] = f"{d.idxmax()}, {d.max():.3f}"
    return row | held_out(run) | robustness(run)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--baseline', required=True,
                    help='a smoke run with flatten_bone_profile off (made when it does not exist)')
    ap.add_argument('--out', default='runs/smoke', help='the smoke run with it on (default runs/smoke)')
    ap.add_argument('--figures', default=str(ROOT / 'figures' / 'flatten-heads'))
    ap.add_argument('--table-only', action='store_true')
    a = ap.parse_args(argv)
    base, flat = Path(a.baseline), Path(a.out)
    if not (base / 'per_patient.csv').exists(): run_smoke(base, False)
    if not a.table_only: run_smoke(flat, True)
    t = pd.DataFrame([summary(base), summary(flat)], index=['baseline', 'flattened heads']).T.reset_index()
    t.columns = ['', 'baseline', 'flattened heads']
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / 'flatten_heads.csv', index=False)
    md = ("# Template heads flattened against the distance from bone (ours: saharank's cohorts, smoke size)\n\n"
          "The smoke run (`baseline`) and the same run with each template head's parenchyma HU profile against the "
          "distance from bone removed (`flattened heads`, `bench/flatten_heads.py`): Tables 2-3's best Dice; the "
          "leave-one-head-out and leave-one-pattern-out rows (Dice in / out, volume error out, the clean held-out "
          "head in mL: network / post-processed; the flattened run's model flattens its clean held-out head as "
          "labels); the robustness report's median volume change (cross-validation test folds). One training each.\n\n"
          + markdown_table(t))
    (fig / 'flatten_heads.md').write_text(md)
    from saharank.core import versions
    prov = dict(command='python bench/flatten_heads.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
                versions=versions(),
                runs={k: json.loads((p / 'provenance.json').read_text()).get('device_name')
                      for k, p in (('baseline', base), ('flattened heads', flat))})
    (fig / 'flatten_heads_provenance.json').write_text(json.dumps(prov, indent=1, default=str) + '\n')
    print(md)


if __name__ == '__main__':
    main()
