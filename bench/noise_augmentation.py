"""Does a training setting make the networks robust to other scans? The smoke run with one setting of its training
at [smoke]'s value and at others, everything else as [smoke] (issue #28): the largest noise SD of the intensity
augmentation (`intensity_noise_hu`; goal "noise 15 HU ... median volume change <= 15 %"), its largest rise of the HU
toward the skull (`intensity_bone_rise_hu`) or the share of blood-free slices trained on (`empty_slice_fraction`;
goals on heads never trained on), on one cohort draw or several (`--seeds`).

    python bench/noise_augmentation.py                           # runs/noise-aug-{8,16}, then the table
    python bench/noise_augmentation.py --noise 8 16 24           # these noise SDs
    python bench/noise_augmentation.py --reuse 8=runs/smoke      # take 8 HU from a smoke run already made
    python bench/noise_augmentation.py --table-only              # the table from the runs already in --runs
    python bench/noise_augmentation.py --setting intensity_bone_rise_hu --values 0 15 --reuse 0=runs/smoke
                                                                 # runs/bonerise-aug-15; figures/bonerise-augmentation/
    python bench/noise_augmentation.py --setting empty_slice_fraction --values 0.15 0.5 --seeds 0 1 \
        --reuse 0.15=runs/smoke --reuse 0.15/1=runs/smoke-seed1   # two cohort draws: runs/empty-aug-0.5{,-seed1}
    python bench/noise_augmentation.py --base smoke-long --values 8 16 --seeds 0 1 \
        --reuse 8=runs/smoke-long --reuse 8/1=runs/smoke-long-seed1
                  # from [smoke-long]: runs/smoke-long-noise-aug-16{,-seed1}, figures/noise-augmentation-smoke-long/
    python bench/noise_augmentation.py --setting test_time_flip --values 0 1 --seeds 0 1 \
        --reuse 0=runs/smoke --reuse 0/1=runs/smoke-seed1
                  # the same networks read once and with flip TTA: runs/flip-aug-1{,-seed1}, figures/test-time-flip/

Each value N is `saharank reproduce --profile smoke-TAGN --settings S --no-bench` (TAG: `noise`, `bonerise` or
`empty`; S: the packaged settings.ini plus [smoke-TAGN] = [smoke] with the setting = N; with a cohort seed s other than
[smoke]'s, [smoke-TAGN-seeds] with `seed` = s too, in runs/TAG-aug-N-seeds), so each run has its cross-validation,
deployable models, robustness and leave-one-out reports. With `--base PROFILE` the variants start from that profile
instead ([PROFILE-TAGN], runs/PROFILE-TAG-aug-N, figures/...-PROFILE/). A reading setting (`test_time_flip`: how
a trained network is read, run key 'evaluate') does not retrain: its run folder starts as a copy of the first value's
run at that seed (without its report), whose trained weights the pipeline then evaluates again (the deployable models
are trained again: their key holds the reading). `--reuse` takes a run folder, or a report
committed under figures/ (the models of its leave-one-out table, their Dice from its table2.csv / table3.csv; a
report keeps no settings: it is taken as the base profile's at that cohort seed). Compare runs of one machine: another
CPU type moves these rows as much as a training change (bench/README.md). Prints and writes (--figures, default
figures/noise-augmentation/, bonerise-augmentation/ or empty-slices/) TAG_augmentation.csv, .md and
_provenance.json: per N, cohort seed and selected model (Table 2's best strategy, Table 3's best adapter) the mean
Dice over all SAH patients, the median |volume change| (%) of the robustness report under each perturbation
(cross-validation test folds), the held-out heads' Dice in -> out and volume error (leave-one-head-out, the report's
generalization table) and the clean held-out head's mL called blood (network alone / post-processed). Ratios to the
first N of each seed are in the table; nothing is asserted.
A run whose settings lack the setting (made before it existed) reads settings.ini's [DEFAULT]. Run it on a quiet
machine: each run is a smoke run (about 8 min on 2 cores).
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from variants import SETTINGS, markdown_table, run_variant, settings_with_variants, write_runs_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PERTURBATIONS = ('noise 6 HU', 'noise 15 HU', 'pixel 1.5x coarser', 'pixel 1.5x finer', 'slice 2x thicker',
                 'institution outside the ranges')


# the settings this benchmark varies: their tag (profile, folder and file names) and unit
TAGS = {'intensity_noise_hu': 'noise', 'intensity_bone_rise_hu': 'bonerise', 'empty_slice_fraction': 'empty',
        'test_time_flip': 'flip'}
# the default folder of each setting's table under figures/
FIGURES = {'noise': 'noise-augmentation', 'bonerise': 'bonerise-augmentation', 'empty': 'empty-slices',
           'flip': 'test-time-flip'}
UNITS = {'intensity_noise_hu': ' HU', 'intensity_bone_rise_hu': ' HU', 'empty_slice_fraction': '',
         'test_time_flip': ''}
# settings of how a trained network is read (run key 'evaluate'): their runs start from the first value's weights
READING = {'test_time_flip'}


def profile_name(setting: str, n: float, seed: int | None = None, base: str = 'smoke') -> str:
    "The variant's profile: BASE-TAGN, with -seedS when the cohort seed `seed` is not [`base`]'s."
    return f'{base}-{TAGS[setting]}{n:g}' + ('' if seed is None else f'-seed{seed}')


def settings_with_values(setting: str, values, path: Path, seeds=(None,), base: str = 'smoke') -> Path:
    """settings.ini plus [BASE-TAGN] = [`base`] with `setting` N for each N (and, per seed s of `seeds` other than
    None, [BASE-TAGN-seeds] with `seed` = s too), written to `path`; exits when [`base`] has no intensity
    augmentation."""
    from saharank.settings import load_settings
    if not load_settings(base, SETTINGS).intensity_augmentation:
        sys.exit(f"{SETTINGS}: [{base}] has no intensity augmentation; this benchmark varies {setting}")
    return settings_with_variants({profile_name(setting, n, s, base): {setting: f'{n:g}'} | ({} if s is None else
                                   {'seed': str(s)}) for n in values for s in seeds}, path, base=base)


def run_value(setting: str, n: float, out: Path, ini: Path, seed: int | None = None, base: str = 'smoke') -> None:
    run_variant(profile_name(setting, n, seed, base), ini, out, '--no-bench',
                log=f'{TAGS[setting]}_augmentation.log')


def copy_trained(src: Path, out: Path) -> None:
    """`out` made a copy of the run folder `src` without its report (a reading setting's run evaluates the weights
    `src` trained: the run keys of training leave the reading out, `saharank.grid.reading_suffix`); exits when `src`
    is not a run folder."""
    import shutil
    if not (src / 'provenance.json').is_file(): sys.exit(f"{src}: not a run folder (no provenance.json) to start from")
    shutil.copytree(src, out, ignore=shutil.ignore_patterns('report', '*.log', '*.lock'))


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


def is_report(out: Path) -> bool:
    "Whether `out` is a report committed under figures/ (its files at the top, no provenance.json) or a run folder."
    return not (out / 'provenance.json').is_file() and (out / 'report_provenance.json').is_file()


def _selected(out: Path, held: pd.DataFrame) -> list[tuple[str, str, float]]:
    """(role, model, mean Dice over the SAH patients) of Table 2's best strategy and Table 3's best adapter: from a
    run's per_patient.csv, or for a committed report the models its leave-one-out table `held` was made for (the
    report's own selection, unrounded) with their Dice from its table2.csv / table3.csv (column All, 3 decimals)."""
    if not is_report(out):
        per = pd.read_csv(out / 'per_patient.csv', dtype={'id': str, 'fold': str})
        return [(label, m := per[per.experiment == exp].groupby('model').dice.mean().idxmax(),
                 round(per[(per.experiment == exp) & (per.model == m)].dice.mean(), 3))
                for exp, label in (('strategy', 'best strategy'), ('adapter', 'best adapter'))]
    out_rows = []
    for table, label in (('table2.csv', 'best strategy'), ('table3.csv', 'best adapter')):
        t = pd.read_csv(out / table, index_col=0)
        m = [m for m in held.model.unique() if m in t.index]
        if len(m) != 1: sys.exit(f"{out}: {table} and generalization.csv share {len(m)} models, not 1")
        out_rows.append((label, m[0], float(str(t.loc[m[0], 'All']).split()[0])))
    return out_rows


def summary(setting: str, n: float, out: Path, default: float, seed: int) -> list[dict]:
    """The table's rows (one per selected model) from the run in `out`, whose `setting` must be `n` (`default` when
    its settings lack it) and cohort seed `seed`; or from a report committed under figures/ (`is_report`: it keeps no
    settings, so `n` and `seed` are taken as given)."""
    committed = is_report(out)
    report = out if committed else out / 'report'
    if not committed:
        prov = json.loads((out / 'provenance.json').read_text())
        value = prov['settings'].get(setting, default)
        if value != n: sys.exit(f"{out}: its {setting} is {value}, not {n:g}")
        if prov['settings']['seed'] != seed:
            sys.exit(f"{out}: its cohort seed is {prov['settings']['seed']}, not {seed}")
    rob = pd.read_csv(report / 'robustness_per_patient.csv', dtype={'id': str})
    gen = pd.read_csv(report / 'generalization_clean.csv')
    held = pd.read_csv(report / 'generalization.csv')
    rows = []
    for label, model, dice in _selected(out, held):
        row = {setting: n, 'seed': seed, 'selected': label, 'model': model, 'dice': dice}
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
    seeds = t.seed.nunique() > 1
    cols = [f"{m} ({v:g}{UNITS[setting]}" + (f", seed {s})" if seeds else ")")
            for m, v, s in zip(t.model, t[setting], t.seed)]
    return markdown_table(t.T.reset_index().set_axis(['', *cols], axis=1))


def _folders(a, tag: str, base_seed: int) -> tuple[dict, set]:
    """The run folders, {(N, cohort seed): folder} (runs/TAG-aug-N, -seedS for a seed other than [smoke]'s, or
    --reuse's N=FOLDER for the base seed / N/S=FOLDER), and the set of (N, seed) that --reuse names."""
    reuse = {}
    for r in a.reuse:
        k, v = r.split('=', 1)
        n, _, sd = k.partition('/')
        reuse[float(n), int(sd) if sd else base_seed] = Path(v)
    return {(n, sd): reuse.get((n, sd), Path(a.runs) / (f'{tag}-aug-{n:g}' + ('' if sd == base_seed else
                                                                                f'-seed{sd}')))
            for sd in a.seeds or [base_seed] for n in a.values}, set(reuse)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--setting', default='intensity_noise_hu', choices=sorted(TAGS), help='the setting to vary')
    ap.add_argument('--values', '--noise', type=float, nargs='+', default=[8., 16.], help="the setting's values")
    ap.add_argument('--seeds', type=int, nargs='+', default=None, help="cohort seeds (default: the base's)")
    ap.add_argument('--base', default='smoke', help='the profile the variants start from (default smoke)')
    ap.add_argument('--runs', default='runs', help='folder of the runs (runs/TAG-aug-N[-seedS])')
    ap.add_argument('--figures', default=None, help='default figures/noise-augmentation, bonerise-augmentation or '
                    'empty-slices (with -BASE for another --base)')
    ap.add_argument('--reuse', action='append', default=[], metavar='N[/SEED]=FOLDER',
                    help='take N (at cohort seed SEED) from this run folder or committed report')
    ap.add_argument('--table-only', action='store_true')
    a = ap.parse_args(argv)
    from saharank.settings import load_settings
    tag = TAGS[a.setting]
    base_seed, default = load_settings(a.base, SETTINGS).seed, getattr(load_settings('DEFAULT', SETTINGS), a.setting)
    folders, reuse = _folders(a, tag if a.base == 'smoke' else f'{a.base}-{tag}', base_seed)
    if not a.table_only:
        seeds = sorted({None if sd == base_seed else sd for _, sd in folders}, key=lambda sd: (sd is not None, sd))
        ini = settings_with_values(a.setting, a.values, Path(a.runs) / f'{tag}_augmentation_settings.ini',
                                   seeds=seeds, base=a.base)
        for (n, sd), out in folders.items():
            if (n, sd) not in reuse and not (out / 'report' / 'robustness_per_patient.csv').is_file():
                if a.setting in READING and not out.exists(): copy_trained(folders[a.values[0], sd], out)
                run_value(a.setting, n, out, ini, None if sd == base_seed else sd, a.base)
    t = pd.DataFrame([r for (n, sd), out in folders.items() for r in summary(a.setting, n, out, default, sd)])
    for c in [c for c in t.columns if c.endswith('volume change %')]:
        base = t.groupby(['seed', 'selected'])[c].transform('first')
        t[c.replace('volume change %', 'ratio to first')] = (t[c] / base).round(2)
    fig = Path(a.figures or ROOT / 'figures' / (FIGURES[tag] + ('' if a.base == 'smoke' else f'-{a.base}')))
    command = ' '.join(['python', 'bench/noise_augmentation.py', *(argv or sys.argv[1:])])
    write(t, fig, tag, a.setting, a.base, {f'{n:g}' + ('' if sd == base_seed else f'/seed{sd}'): out
                                   for (n, sd), out in folders.items()}, command)
    print(t.T.to_string(header=False))


TITLES = {'noise': 'Noise augmentation against noisy scans',
          'bonerise': 'A rise of the HU toward the skull in training, against heads never trained on',
          'empty': 'More blood-free slices in training, against heads never trained on',
          'flip': 'Left-right flip test-time augmentation: the same trained networks read once and twice'}


def write(t: pd.DataFrame, fig: Path, tag: str, setting: str, base: str, folders: dict, command: str) -> None:
    "The table `t` as TAG_augmentation.csv and .md in `fig`, and the runs' provenance beside it."
    write_runs_table(t, fig, f'{tag}_augmentation',
        f"# {TITLES[tag]} (ours: saharank's cohorts, smoke size; not the paper's)\n\n"
        + ('' if base == 'smoke' else f"Every run is [{base}] (at its cohort seed) but for the setting.\n\n")
        + f"Per value of the {'reading' if setting in READING else 'training'} setting `{setting}`"
        + (f" ({UNITS[setting].strip()})" if UNITS[setting] else '') +
        ", cohort seed (the 30 SAH patients and their folds) and selected model: mean Dice over the 30 SAH patients,"
        " and per perturbation of the robustness report the median |volume "
        "change| (%, cross-validation test folds) and mean Dice; the clean held-out head's mL called blood "
        "(leave-one-head-out: network alone, post-processed; summed over the held-out heads) and the held-out heads' "
        f"Dice and volume error. Command: `{command}` (`bench/noise_augmentation.py`).\n\n" + _markdown(t, setting),
        folders, command)


if __name__ == '__main__':
    main()
