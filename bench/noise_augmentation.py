"""Does training with a stronger intensity augmentation make the networks robust to other scans? The smoke run with
one range of the intensity augmentation at [smoke]'s value and at others, everything else as [smoke] (issue #28):
the largest noise SD (`intensity_noise_hu`; goal "noise 15 HU ... median volume change <= 15 %") or the largest rise
of the HU toward the skull (`intensity_bone_rise_hu`; goals on heads never trained on).

    python bench/noise_augmentation.py                           # runs/noise-aug-{8,16}, then the table
    python bench/noise_augmentation.py --noise 8 16 24           # these noise SDs
    python bench/noise_augmentation.py --reuse 8=runs/smoke      # take 8 HU from a smoke run already made
    python bench/noise_augmentation.py --table-only              # the table from the runs already in --runs
    python bench/noise_augmentation.py --setting intensity_bone_rise_hu --values 0 15 --reuse 0=runs/smoke
                                                                 # runs/bonerise-aug-15; figures/bonerise-augmentation/

Each value N is `saharank reproduce --profile smoke-TAGN --settings S --no-bench` (TAG: `noise` or `bonerise`; S:
the packaged settings.ini plus [smoke-TAGN] = [smoke] with the setting = N), so each run has its cross-validation,
deployable models, robustness and leave-one-out reports. Prints and writes (--figures, default
figures/TAG-augmentation/; `noise-augmentation` for the noise) TAG_augmentation.csv, .md and _provenance.json: per N
and selected model (Table 2's best strategy, Table 3's best adapter) the mean Dice over all SAH patients, the median
|volume change| (%) of the robustness report under each perturbation (cross-validation test folds), the held-out
heads' Dice in -> out and volume error (leave-one-head-out, the report's generalization table) and the clean held-out
head's mL called blood (network alone / post-processed). Ratios to the first N are in the table; nothing is asserted.
A run whose settings lack the setting (made before it existed) reads settings.ini's [DEFAULT]. Run it on a quiet
machine: each run is a smoke run (about 8 min on 2 cores).
"""
from __future__ import annotations
import argparse, configparser, json, sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants import SETTINGS, markdown_table, run_variant, settings_with_variants  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PERTURBATIONS = ('noise 6 HU', 'noise 15 HU', 'pixel 1.5x coarser', 'pixel 1.5x finer', 'slice 2x thicker',
                 'institution outside the ranges')


# the settings this benchmark varies: their tag (profile, folder and file names)
TAGS = {'intensity_noise_hu': 'noise', 'intensity_bone_rise_hu': 'bonerise'}


def settings_with_values(setting: str, values, path: Path) -> Path:
    "settings.ini plus [smoke-TAGN] = [smoke] with `setting` N for each N, written to `path`."
    cp = configparser.ConfigParser()
    cp.read(SETTINGS)
    if cp['smoke'].get('intensity_augmentation', 'false').strip().lower() != 'true':
        sys.exit(f"{SETTINGS}: [smoke] has no intensity augmentation; this benchmark varies its {setting}")
    return settings_with_variants({f'smoke-{TAGS[setting]}{n:g}': {setting: f'{n:g}'} for n in values}, path)


def run_value(setting: str, n: float, out: Path, ini: Path) -> None:
    run_variant(f'smoke-{TAGS[setting]}{n:g}', ini, out, '--no-bench', log=f'{TAGS[setting]}_augmentation.log')


def _held_out_heads(gen: pd.DataFrame, model: str) -> dict:
    """The held-out heads' Dice in -> out, volume error out (%) and clean head's mL (network / post-processed) of
    `model` from the report's generalization table."""
    g = gen[(gen.model == model) & gen.clean_network_ml.notna()]
    out = {}
    for r in g.itertuples():
        out[f'held-out {r.held_out}: Dice in -> out'] = f'{r.dice_in:.3f} -> {r.dice_out:.3f}'
        out[f'held-out {r.held_out}: volume error out %'] = round(100 * r.volume_error_out, 1)
        out[f'held-out {r.held_out}: clean head mL, network / post-processed'] = \
            f'{r.clean_network_ml:g} / {r.clean_predicted_ml:g}'
    return out


def summary(setting: str, n: float, out: Path) -> list[dict]:
    "The table's rows (one per selected model) from the run in `out`."
    prov = json.loads((out / 'provenance.json').read_text())
    cp = configparser.ConfigParser()
    cp.read(SETTINGS)
    value = prov['settings'].get(setting, float(cp['DEFAULT'][setting]))
    if value != n: sys.exit(f"{out}: its {setting} is {value}, not {n:g}")
    per = pd.read_csv(out / 'per_patient.csv', dtype={'id': str, 'fold': str})
    rob = pd.read_csv(out / 'report' / 'robustness_per_patient.csv', dtype={'id': str})
    gen = pd.read_csv(out / 'report' / 'generalization_clean.csv')
    held = pd.read_csv(out / 'report' / 'generalization.csv')
    rows = []
    for exp, label in (('strategy', 'best strategy'), ('adapter', 'best adapter')):
        p = per[per.experiment == exp]
        model = p.groupby('model').dice.mean().idxmax()
        row = {setting: n, 'selected': label, 'model': model, 'dice': round(p[p.model == model].dice.mean(), 3)}
        r = rob[(rob.evaluation == 'cross-validation test folds') & rob.model.str.endswith(model)]
        for name in PERTURBATIONS:
            q = r[r.perturbation == name]
            row[f'{name}: volume change %'] = round(100 * q.rel_change.abs().median(), 1)
            row[f'{name}: Dice'] = round(q.dice.mean(), 3)
        g = gen[gen.model == model]
        row['clean held-out head mL, network'] = round(g.network_ml.sum(), 1) if len(g) else None
        row['clean held-out head mL'] = round(g.predicted_ml.sum(), 1) if len(g) else None
        rows.append(row | _held_out_heads(held, model))
    return rows


def _markdown(t: pd.DataFrame, setting: str) -> str:
    "The table transposed (a row per quantity, a column per run and model) in Markdown."
    cols = [f"{m} ({v:g} HU)" for m, v in zip(t.model, t[setting])]
    return markdown_table(t.T.reset_index().set_axis(['', *cols], axis=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--setting', default='intensity_noise_hu', choices=sorted(TAGS), help='the range to vary')
    ap.add_argument('--values', '--noise', type=float, nargs='+', default=[8., 16.], help="the setting's values, HU")
    ap.add_argument('--runs', default='runs', help='folder of the runs (runs/TAG-aug-N)')
    ap.add_argument('--figures', default=None, help='default figures/TAG-augmentation (noise: noise-augmentation)')
    ap.add_argument('--reuse', action='append', default=[], metavar='N=FOLDER', help='take N from this run folder')
    ap.add_argument('--table-only', action='store_true')
    a = ap.parse_args(argv)
    tag = TAGS[a.setting]
    reuse = {float(k): Path(v) for k, v in (r.split('=', 1) for r in a.reuse)}
    folders = {n: reuse.get(n, Path(a.runs) / f'{tag}-aug-{n:g}') for n in a.values}
    if not a.table_only:
        ini = settings_with_values(a.setting, a.values, Path(a.runs) / f'{tag}_augmentation_settings.ini')
        for n, out in folders.items():
            if n not in reuse and not (out / 'report' / 'robustness_per_patient.csv').is_file():
                run_value(a.setting, n, out, ini)
    t = pd.DataFrame([r for n, out in folders.items() for r in summary(a.setting, n, out)])
    for c in [c for c in t.columns if c.endswith('volume change %')]:
        base = t.groupby('selected')[c].transform('first')
        t[c.replace('volume change %', 'ratio to first')] = (t[c] / base).round(2)
    fig = Path(a.figures or ROOT / 'figures' / ('noise-augmentation' if tag == 'noise' else f'{tag}-augmentation'))
    command = ' '.join(['python', 'bench/noise_augmentation.py', *(argv or sys.argv[1:])])
    write(t, fig, tag, a.setting, folders, command)
    print(t.T.to_string(header=False))


TITLES = {'noise': 'Noise augmentation against noisy scans',
          'bonerise': 'A rise of the HU toward the skull in training, against heads never trained on'}


def write(t: pd.DataFrame, fig: Path, tag: str, setting: str, folders: dict, command: str) -> None:
    "The table `t` as TAG_augmentation.csv and .md in `fig`, and the runs' provenance beside it."
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / f'{tag}_augmentation.csv', index=False)
    (fig / f'{tag}_augmentation.md').write_text(
        f"# {TITLES[tag]} (ours: saharank's cohorts, smoke size; not the paper's)\n\n"
        f"Per value of the training's intensity augmentation setting `{setting}` (HU) and selected model:"
        " mean Dice over the 30 SAH patients, and per perturbation of the robustness report the median |volume "
        "change| (%, cross-validation test folds) and mean Dice; the clean held-out head's mL called blood "
        "(leave-one-head-out: network alone, post-processed; summed over the held-out heads) and the held-out heads' "
        f"Dice and volume error. Command: `{command}` (`bench/noise_augmentation.py`).\n\n" + _markdown(t, setting))
    keep = ('git_commit', 'versions', 'generator_version', 'engine_version', 'wall_time_s')
    prov = {str(n): {k: v for k, v in json.loads((out / 'provenance.json').read_text()).items() if k in keep}
            for n, out in folders.items()}
    (fig / f'{tag}_augmentation_provenance.json').write_text(json.dumps(
        dict(command=command, runs={str(n): str(out) for n, out in folders.items()}, provenance=prov), indent=1,
        default=str))


if __name__ == '__main__':
    main()
