"""What the benchmarks that read real heads with a finished run's models share (`reading.py`, `native_sah.py`,
`pixel_size.py`, `noise.py`, `slice_thickness.py`, `clean_head_false_positives.py`): the run opened (its settings
checked against today's profile, its SAH cohort, the heads it was built from), its deployable and leave-one-head-out
models described as `saharank predict` reads scans, new SAH patients on the heads' own voxels, a scan read as `predict`
reads it, and the provenance JSON written beside a figure."""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_parser(doc: str, figures: str, run_help: str = 'a finished run folder with deployable models',
               patients: int | None = None) -> argparse.ArgumentParser:
    """The argument parser a head-reading benchmark starts from: its description (the first paragraph of `doc`), the
    run folder (`run_help`), --patients per head and pattern (only when `patients`, its default, is given), --figures
    (default figures/`figures` of the repository) and --cache-dir; the script adds its own options."""
    ap = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    ap.add_argument('run', help=run_help)
    if patients is not None:
        ap.add_argument('--patients', type=int, default=patients,
                        help=f'patients per head and pattern (default {patients})')
    ap.add_argument('--figures', default=str(ROOT / 'figures' / figures))
    ap.add_argument('--cache-dir', default=None, help="where the head CTs are cached (default: saharank's)")
    return ap


def run_settings_checked(run: Path):
    """The run's settings (its profile from the packaged settings.ini; flatten_bone_profile off for a run that does not
    record it); exits naming the settings that differ."""
    from saharank.report import run_settings
    from saharank.settings import load_settings
    recorded = run_settings(run)
    cfg = load_settings(recorded['profile'])
    differ = {k for k, v in cfg.as_dict().items() if k in recorded and recorded[k] != v}
    if differ: sys.exit(f"{run}: made with other [{recorded['profile']}] settings than today's: {sorted(differ)}")
    # a run made before the setting flatten_bone_profile existed read its heads as they are
    return cfg if 'flatten_bone_profile' in recorded else cfg.replace(flatten_bone_profile=False)


def open_run(run, cache_dir=None) -> SimpleNamespace:
    """A finished run folder: run (Path), cfg (its settings), root (its SAH cohort's folder), sah (the manifest) and
    heads ({name: `Anatomy`} of the SAH cohort's heads, from the cache only)."""
    from saharank.cohort import load_heads
    from saharank.core import RunLayout
    from saharank.data import read_manifest
    run = Path(run)
    root = RunLayout(run).cohort('sah')
    sah = read_manifest(root)
    return SimpleNamespace(run=run, cfg=run_settings_checked(run), root=root, sah=sah,
                           heads=load_heads(sorted(set(sah['head'])), cache_dir=cache_dir, allow_download=False))


def deployable_models(r) -> list[tuple]:
    """(folder name, model, meta) of the run's deployable models, meta with `canvas_px` and `slab_mm` from the run's
    settings (model folders made before they were recorded lack them)."""
    from saharank.predict import load_model
    out = []
    for folder in sorted(p for p in (r.run / 'models').iterdir() if p.is_dir()):
        model, meta = load_model(folder)
        out.append((folder.name, model, meta | dict(canvas_px=r.cfg.canvas_px, slab_mm=r.cfg.slab_mm)))
    return out


def held_out_head_models(r) -> list[tuple]:
    """(configuration name, held-out head, model, meta) of the run's leave-one-head-out models (the configurations
    its tables select, replicate 0; `saharank.grid.fold_model`), meta as a deployable model's, with the post-processing
    chosen on the fold's inner split."""
    from saharank.deploy import best_configurations
    from saharank.evaluation import postprocessing, read_per_patient
    from saharank.grid import fold_model, leave_one_head_out_tasks
    cfg = r.cfg
    per = read_per_patient(r.run / 'per_patient.csv')
    tasks = leave_one_head_out_tasks(cfg, r.run, r.sah, 'cpu',
                                     best_configurations(per[per.replicate == 0] if 'replicate' in per else per))
    return [(t['name'], t['held_out_value'], fold_model(t, resumable=False),
             dict(window=cfg.window, pixel_mm=cfg.pixel_size_mm, canvas_px=cfg.canvas_px, slab_mm=cfg.slab_mm,
                  brain_reference_hu=cfg.get('brain_reference_hu'),
                  flatten_bone_profile=bool(cfg.get('flatten_bone_profile')),
                  test_time_flip=bool(cfg.get('test_time_flip')),
                  postprocessing=postprocessing(cfg, r.root, t['train_ids'], t['fold'])))
            for t in tasks]


def native_grid(ct):
    "The axial `Grid` of the head `ct` at its own pixel size and slice spacing, square, over its intracranial space."
    from saharank.cohort import grid_for
    sp = np.linalg.norm(ct.affine[:3, :3], axis=0)
    n = int(max(ct.hu.shape[:2]))
    return grid_for(ct, n, float(n * sp[0]), float(sp[2]))


def new_patients(r, patients: int):
    """New SAH patients on the run's heads at their own voxels (`native_grid`), for `pixel_size.py`, `noise.py` and
    `slice_thickness.py` alike: per head and pattern (cisternal, pockets), `patients` patients by
    `saharank.cohort.make_patient` (seeds 20_000 + k, which no cohort uses; 10-60 mL, IVH with probability 0.4, the
    modified Fisher grade drawn as the cohorts draw it; no noise added: the scan's own). Prints one line each. Yields
    (head, pattern, k, info, hu (X, Y, Z) HU, mask (X, Y, Z) 0/1, affine)."""
    from saharank.cohort import make_patient
    for head, ct in r.heads.items():
        grid = native_grid(ct)
        for pattern in ('cisternal', 'pockets'):
            for k in range(patients):
                t0 = time.time()
                rng = np.random.default_rng(np.random.SeedSequence([20_000 + k, len(pattern)]))
                info = {}
                hu, mask = make_patient(ct, grid, rng, sah_ml=float(rng.uniform(10., 60.)),
                                        ivh=bool(rng.random() < 0.4), noise_hu=(0., 0.), sah_pattern=pattern,
                                        info=info)
                print(f"{head} {pattern} {k}: grade {info['fisher_grade']}, {time.time() - t0:.0f} s", flush=True)
                yield head, pattern, k, info, hu, mask, grid.affine


def read_scan(model, meta, hu, affine, threshold: float):
    """`saharank.predict.segment_volume` of the scan `hu` (X, Y, Z HU) with `affine`, on the CPU, as `saharank predict`
    reads it with a model of description `meta` (window, pixel, calibration, post-processing, canvas, slab; as
    `deployable_models` gives it). Returns (mask uint8, probability float32)."""
    from saharank.predict import segment_volume
    return segment_volume(model, hu, affine, tuple(meta['window']), float(meta['pixel_mm']), threshold, 'cpu',
                          brain_reference_hu=meta.get('brain_reference_hu'),
                          postprocessing=meta.get('postprocessing'), canvas_px=meta['canvas_px'],
                          slab_mm=meta['slab_mm'], flatten=bool(meta.get('flatten_bone_profile')),
                          test_time_flip=bool(meta.get('test_time_flip')))


def scan_rows(models, scans: dict, threshold: float, key: str, **labels):
    """One row (dict) per model of `models` ((name, model, meta), `deployable_models`) and scan of `scans` ({value of
    the column `key`: (hu, mask, affine)}), read by `read_scan`: `labels`, model, `key`, annotated_ml, predicted_ml,
    dice and network_ml (the network's own mask, before post-processing)."""
    from saharank.data import mask_volume_ml, voxel_spacing
    from saharank.evaluation import dice_score
    for name, model, meta in models:
        for value, (h, m, aff) in scans.items():
            pred, prob = read_scan(model, meta, h, aff, threshold)
            sp = voxel_spacing(aff)
            yield dict(**labels, model=name, **{key: value}, annotated_ml=mask_volume_ml(m, sp),
                       predicted_ml=mask_volume_ml(pred, sp), dice=dice_score(pred, m),
                       network_ml=mask_volume_ml(prob >= threshold, sp))


def write_provenance(path, script: str, argv, r) -> None:
    """The provenance JSON of a figure at `path`: the command, the run's commit, versions and device (the CPU: the
    same commit trains other models on another CPU), the heads' sha256."""
    prov = json.loads((r.run / 'provenance.json').read_text())
    Path(path).write_text(json.dumps(
        {'command': ' '.join(['python', script, *(argv or sys.argv[1:])]),
         'run_git_commit': prov.get('git_commit'), 'versions': prov.get('versions'),
         'run_device': prov.get('device_name'),
         'heads': {n: h.sha256 for n, h in r.heads.items()}}, indent=1, default=str))
