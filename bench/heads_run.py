"""What the benchmarks that read real heads with a finished run's models share (`reading.py`, `native_sah.py`,
`pixel_size.py`, `clean_head_false_positives.py`): the run opened (its settings checked against today's profile, its
SAH cohort, the heads it was built from), its deployable and leave-one-head-out models described as `saharank
predict` reads scans, and the provenance JSON written beside a figure."""
from __future__ import annotations
import json, sys
from pathlib import Path
from types import SimpleNamespace


def run_settings_checked(run: Path):
    "The run's settings (its profile from the packaged settings.ini); exits naming the settings that differ."
    from saharank.report import run_settings
    from saharank.settings import load_settings
    recorded = run_settings(run)
    cfg = load_settings(recorded['profile'])
    differ = {k for k, v in cfg.as_dict().items() if k in recorded and recorded[k] != v}
    if differ: sys.exit(f"{run}: made with other [{recorded['profile']}] settings than today's: {sorted(differ)}")
    return cfg


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
                  postprocessing=postprocessing(cfg, r.root, t['train_ids'], t['fold'])))
            for t in tasks]


def write_provenance(path, script: str, argv, r) -> None:
    """The provenance JSON of a figure at `path`: the command, the run's commit, versions and device (the CPU: the
    same commit trains other models on another CPU), the heads' sha256."""
    prov = json.loads((r.run / 'provenance.json').read_text())
    Path(path).write_text(json.dumps(
        {'command': ' '.join(['python', script, *(argv or sys.argv[1:])]),
         'run_git_commit': prov.get('git_commit'), 'versions': prov.get('versions'),
         'run_device': prov.get('device_name'),
         'heads': {n: h.sha256 for n, h in r.heads.items()}}, indent=1, default=str))
