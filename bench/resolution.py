"""Can 64 x 64 slices resolve the cisterns? The smoke grid at 64, 96 and 128 pixels a side (issue #28: "measure 96 and
128 and say what it costs"), with everything else as [smoke]: the same 240 mm field of view (3.75, 2.5, 1.875 mm
pixels), 5 mm slices, cohorts, folds, networks and epochs.

    python bench/resolution.py                          # runs/resolution-{64,96,128}, then the table
    python bench/resolution.py --sizes 64 96            # only these sizes
    python bench/resolution.py --reuse 64=runs/smoke    # take size 64 from a smoke run already made (same settings)
    python bench/resolution.py --table-only             # the table from the runs already in --runs
    python bench/resolution.py --sizes 64 128 --generalization --reuse 64=runs/smoke \
        --figures figures/resolution-generalization     # + leave one head / pattern out at each size

Each size is `saharank reproduce --profile smoke-pxN --settings S --no-models --no-robustness --no-report`, where S
is the packaged settings.ini plus a profile [smoke-pxN] equal to [smoke] but `image_size = N`. Prints and writes
(--figures, default figures/resolution/) resolution.csv, resolution.md and resolution_provenance.json: per size the
pixel size, the compute seconds of each stage (cohorts, pre-training, fine-tuning: provenance.json's wall_time_s),
their ratio to size 64, and the mean Dice of Table 2's best strategy and of Table 3's best adapter over all SAH
patients, over the patients of each SAH pattern (pockets, cisternal) and over those of each modified Fisher grade.
With --generalization each size also runs the robustness stage (`--no-robustness` left out), whose leave-one-head-out
and leave-one-pattern-out runs (report/generalization.csv) add, per model the tables select and held-out head or
pattern, the in- and out-of-distribution Dice, the out-of-distribution volume error and the held-out head's clean CT
called blood (network / post-processed mL): does a finer grid close the gap to an unseen head (issue #28 goals)?
And, from the robustness report's cross-validation rows, each selected model's median |volume change| under noise
15 HU, pixels 1.5x coarser and finer, and slices 2x thicker.
Timings are measured, never asserted; run it on a quiet machine.
"""
from __future__ import annotations
import argparse, json, sys, tempfile
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants import markdown_table, run_variant, settings_with_variants  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STAGES = ('cohorts_s', 'pretrain_s', 'finetune_s')


def settings_with_sizes(sizes, path: Path) -> Path:
    "settings.ini plus [smoke-pxN] = [smoke] with image_size N for each N, written to `path`."
    return settings_with_variants({f'smoke-px{n}': {'image_size': n} for n in sizes}, path)


def run_size(n: int, out: Path, ini: Path, generalization: bool = False) -> None:
    run_variant(f'smoke-px{n}', ini, out, '--no-models', *(() if generalization else ('--no-robustness',)),
                '--no-report', log='resolution.log')


def held_out(out: Path) -> dict:
    """The generalization columns of one size: per row of the run's report/generalization.csv (a model the tables
    select, named by its role: best strategy or best adapter, as per_patient.csv's `experiment` says; a held-out head
    or pattern) the model, its Dice in / out, its volume error out (%) and, for a head, its clean CT called blood
    (network / post-processed mL)."""
    g = pd.read_csv(out / 'report' / 'generalization.csv')
    per = pd.read_csv(out / 'per_patient.csv', usecols=['model', 'experiment']).drop_duplicates()
    role = {m: 'best strategy' if e == 'strategy' else 'best adapter' for m, e in zip(per.model, per.experiment)}
    row = {}
    for r in g.itertuples():
        k = f'{role[r.model]} without {r.held_out}'
        row[f'{k}: model, Dice in / out'] = f'{r.model}, {r.dice_in:.3f} / {r.dice_out:.3f}'
        row[f'{k}: volume error out %'] = round(100 * r.volume_error_out, 1)
        if pd.notna(r.clean_network_ml):
            row[f'{k}: clean head mL (network / post-processed)'] = \
                f'{r.clean_network_ml:g} / {r.clean_predicted_ml:g}'
    return row


ROBUSTNESS_ROWS = ('noise 15 HU', 'pixel 1.5x coarser', 'pixel 1.5x finer', 'slice 2x thicker')


def robustness(out: Path) -> dict:
    """The robustness columns of one size: from the run's report/robustness.csv (its cross-validation test folds), per
    selected model (by role: the multi-view network's is the best strategy, the Unet's the best adapter) and each
    perturbation of `ROBUSTNESS_ROWS`, the median |volume change| in % (issue #28's goal: <= 15 %)."""
    rb = pd.read_csv(out / 'report' / 'robustness.csv')
    rb = rb[(rb.evaluation == 'cross-validation test folds') & rb.perturbation.isin(ROBUSTNESS_ROWS)]
    role = lambda m: 'best strategy' if m.startswith('multiview-') else 'best adapter'
    return {f'{role(r.model)}, {r.perturbation}: median volume change %': round(100 * r.median_abs_volume_change, 1)
            for r in rb.itertuples()}


def summary(n: int, out: Path) -> dict:
    "One row of the table from the run in `out`."
    prov = json.loads((out / 'provenance.json').read_text())
    wall = prov['wall_time_s']
    per = pd.read_csv(out / 'per_patient.csv', dtype={'id': str, 'fold': str})
    man = pd.read_csv(out / 'cohorts' / 'sah' / 'manifest.csv', dtype={'id': str})
    per = per.merge(man[['id', 'sah_pattern', 'fisher_grade']], on='id')
    keys = STAGES + (('generalization_s',) if 'generalization_s' in wall else ())
    row = dict(image_size=n, pixel_mm=round(240 / n, 3), **{k: round(float(wall.get(k, 0)), 1) for k in keys})
    for exp, label in (('strategy', 'best strategy'), ('adapter', 'best adapter')):
        p = per[per.experiment == exp]
        model = p.groupby('model').dice.mean().idxmax()
        g = p[p.model == model]
        row |= {f'{label}': model, f'{label} Dice': round(g.dice.mean(), 3),
                f'{label} network Dice': round(g.network_dice.mean(), 3)}
        for pat, gp in g.groupby('sah_pattern'): row[f'{label} Dice {pat} (n={len(gp)})'] = round(gp.dice.mean(), 3)
        for gr, gg in g.groupby('fisher_grade'):
            row[f'{label} Dice Fisher {gr} (n={len(gg)})'] = round(gg.dice.mean(), 3)
    return row


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sizes', type=int, nargs='+', default=[64, 96, 128])
    ap.add_argument('--runs', default='runs', help='folder of the runs (runs/resolution-N)')
    ap.add_argument('--figures', default=str(ROOT / 'figures' / 'resolution'))
    ap.add_argument('--reuse', action='append', default=[], metavar='N=FOLDER',
                    help='take size N from this run folder')
    ap.add_argument('--table-only', action='store_true')
    ap.add_argument('--generalization', action='store_true',
                    help='also leave one head / pattern out at each size (the robustness stage)')
    a = ap.parse_args(argv)
    reuse = {int(k): Path(v) for k, v in (r.split('=', 1) for r in a.reuse)}
    sfx = '-generalization' if a.generalization else ''
    folders = {n: reuse.get(n, Path(a.runs) / f'resolution-{n}{sfx}') for n in a.sizes}
    if not a.table_only:
        with tempfile.TemporaryDirectory() as tmp:
            ini = settings_with_sizes(a.sizes, Path(tmp) / 'settings.ini')
            for n in a.sizes:
                if n not in reuse: run_size(n, folders[n], ini, a.generalization)
    rows = pd.DataFrame([summary(n, folders[n]) | (held_out(folders[n]) | robustness(folders[n])
                                                   if a.generalization else {}) for n in a.sizes])
    base = rows[rows.image_size == min(a.sizes)].iloc[0]
    for k in STAGES: rows[f'{k[:-2]} x'] = (rows[k] / base[k]).round(2) if base[k] else float('nan')
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    rows.to_csv(fig / 'resolution.csv', index=False)
    head = ("Ours (saharank smoke grid, real CT with inserted hematomas, NOT the paper's data): the same cohorts, "
            "folds and training at three slice sizes (240 mm field of view, 5 mm slices). Seconds: compute of each "
            "stage on the machine in resolution_provenance.json; 'x': ratio to the smallest size. Dice: mean per "
            "patient after post-processing (network: before it), by SAH pattern and modified Fisher grade "
            "(n patients).\n\n")
    if a.generalization:
        head += ("Held out (`without`): each model the tables select, named by its role, trained without one head's "
                 "patients (pre-training included) or without one SAH pattern's and tested on them: mean Dice "
                 "in-distribution / held out, the held-out patients' median |volume error| (%), and what the model "
                 "calls blood on the held-out head's own CT without blood (network / post-processed mL). Issue #28's "
                 "goals: Dice >= 0.6 and within 0.1 of in-distribution, volume within 30 %, clean head < 5 mL by the "
                 "network and < 2 mL post-processed. Robustness: the run's report/robustness.csv, cross-validation "
                 "test folds, median of the absolute volume changes, % (goal <= 15 %).\n\n")
    t = rows.T.reset_index()
    t.columns = ['', *[f'{n} px' for n in rows.image_size]]
    md = markdown_table(t)
    (fig / 'resolution.md').write_text(head + md)
    sys.path.insert(0, str(ROOT))
    from saharank.core import versions
    prov = dict(command='python bench/resolution.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
                versions=versions(),
                runs={n: json.loads((folders[n] / 'provenance.json').read_text()).get('device_name')
                      for n in a.sizes},
                cohorts={n: json.loads((folders[n] / 'provenance.json').read_text()).get('cohorts') for n in a.sizes})
    (fig / 'resolution_provenance.json').write_text(json.dumps(prov, indent=1, default=str) + '\n')
    print(head + md)


if __name__ == '__main__':
    main()
