"""SAH in a real head at the scan's own resolution, read as a user's scan (issue #28: "thin slices (1-2.5 mm) read by
`predict`"; the issue's first measurement: cisternal SAH on Cranium through `predict`).

    python bench/native_sah.py runs/smoke                  # the smoke run's deployable and leave-one-head-out models
    python bench/native_sah.py runs/smoke --patients 2     # two patients per head and pattern

For each head of the run's SAH cohort, `--patients` new SAH patients per pattern (cisternal and pockets, modified
Fisher grades drawn as the cohorts draw them; seeds 10_000 + k, which no cohort uses) are made by
`saharank.cohort.make_patient` on the head's own voxel grid (its pixel size and slice spacing: Cranium 0.96 x 0.96 x
1.5 mm, ct_head 1.01 x 1.01 x 2.5 mm; no institution, no added noise: the scan's own), and read by
`saharank.predict.segment_volume` with the run's post-processing, three ways (`READINGS`): the reading before
`canvas_px` (slices padded to a multiple of 16 pixels, the scan's own slices), on the model's canvas as slabs of its
slice thickness, and that flattened as the model's heads were (`flatten_bone_profile`: what `saharank predict` does
with a model that has it; the HU the flattening takes off the annotated blood is recorded per patient). Each patient
twice (`make_patients`): with the generator's blood (nominal HU) and with that blood carrying the head's HU profile
against the distance from bone, as real blood would (read on the canvas only). Models: the
run's deployable models (the head among their training heads, the patients new) and its leave-one-head-out models
(never saw the head). Prints and writes (--figures, default figures/native-sah/)
native_sah.csv (per patient) and native_sah.md (means) and a provenance JSON. Nothing is asserted.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import (  # noqa: E402
    deployable_models, held_out_head_models, native_grid, open_run, run_parser, write_provenance)
from variants import markdown_table  # noqa: E402

# how the scan is read: on the model's canvas as slabs of its slice thickness (else padded to 16 px, its own slices),
# flattened as the model's heads were (`flatten_bone_profile`; else as read)
READINGS = {'padded to 16 px, own slices': dict(canvas=False, flatten=False),
            'canvas, slabs, as read': dict(canvas=True, flatten=False),
            'canvas, slabs, flattened': dict(canvas=True, flatten=True)}


def make_patients(ct, grid, pattern: str, k: int):
    """Patient `k` of `pattern` on the head `ct`'s own `grid` (seeds 10_000 + k, no added noise), with the generator's
    blood (its nominal HU in place of the tissue's: `make_patient`) and with that blood carrying the head's HU profile
    against the distance from bone, as real blood does (beam hardening raises every material there): the same patient
    made without blood (same seeds, same pose) gives the profile, its HU minus `flatten_bone_profile` of it, added
    times the blood's fraction ((HU - the clean patient's) / (the blood's HU - the clean patient's), within 0-1).
    Yields (blood, hu float32, mask, info) for blood 'nominal HU' and "the head's profile"."""
    from saharank.cohort import flatten_bone_profile, make_patient
    made = []
    for sah in (True, False):
        rng = np.random.default_rng(np.random.SeedSequence([10_000 + k, len(pattern)]))
        info = {}
        ml_target = float(rng.uniform(10., 60.))
        hu, mask, _ = make_patient(ct, grid, rng, sah_ml=ml_target if sah else 0.01, ivh=bool(rng.random() < 0.4),
                                   noise_hu=(0., 0.), sah_pattern=pattern, info=info, intracranial=True)
        made.append((hu.astype(np.float32), mask, info))
    (hu, mask, info), (clean, _, _) = made
    yield 'nominal HU', hu, mask, info
    profile = clean - flatten_bone_profile(clean, grid.affine)
    f = np.clip((hu - clean) / np.maximum(info['blood_hu'] - clean, 1.), 0., 1.)
    yield "the head's profile", (hu + f * profile).astype(np.float32), mask, info


def main(argv=None) -> None:
    ap = run_parser(__doc__, 'native-sah', patients=2,
                    run_help='a finished run folder with deployable models and leave-one-head-out runs')
    a = ap.parse_args(argv)
    from saharank.cohort import flatten_bone_profile
    from saharank.data import calibrate_hu
    from saharank.data import mask_volume_ml, voxel_spacing
    from saharank.evaluation import dice_score
    from saharank.predict import segment_volume
    r = open_run(a.run, a.cache_dir)
    run, cfg, heads = r.run, r.cfg, r.heads
    models = [(name, 'deployable', h, model, meta) for name, model, meta in deployable_models(r) for h in heads]
    models += [(name, 'leave-one-head-out', head, model, meta)
               for name, head, model, meta in held_out_head_models(r)]
    rows = []
    for head, ct in heads.items():
        grid = native_grid(ct)
        for pattern in ('cisternal', 'pockets'):
            for k, (blood, hu, mask, info) in ((k, p) for k in range(a.patients)
                                               for p in make_patients(ct, grid, pattern, k)):
                # what the flattening takes off the blood (calibrated HU, median over the annotated voxels)
                cal = calibrate_hu(hu, cfg.get('brain_reference_hu') or 30.)
                drop = float(np.median((cal - flatten_bone_profile(cal, grid.affine))[mask > 0]))
                print(f"{head} {pattern} {k}, blood {blood}: grade {info['fisher_grade']}, flattening takes "
                      f"{drop:.1f} HU off its blood", flush=True)
                for name, kind, h, model, meta in models:
                    if h != head: continue
                    for reading, how in READINGS.items():
                        if how['flatten'] and not meta.get('flatten_bone_profile'): continue
                        if blood != 'nominal HU' and not how['canvas']: continue
                        now = how['canvas']
                        pred, prob = segment_volume(
                            model, hu.astype(np.float32), grid.affine, tuple(meta['window']),
                            float(meta['pixel_mm']), cfg['threshold'], 'cpu',
                            brain_reference_hu=meta.get('brain_reference_hu'), postprocessing=meta['postprocessing'],
                            canvas_px=meta['canvas_px'] if now else None, slab_mm=meta['slab_mm'] if now else None,
                            flatten=how['flatten'], test_time_flip=bool(meta.get('test_time_flip')))
                        sp, net = voxel_spacing(grid.affine), prob >= cfg['threshold']
                        rows.append(dict(head=head, pattern=pattern, patient=k, blood=blood,
                                         fisher_grade=info['fisher_grade'],
                                         model=name, trained=kind, reading=reading, blood_flatten_hu=drop,
                                         annotated_ml=mask_volume_ml(mask, sp), dice=dice_score(pred, mask),
                                         predicted_ml=mask_volume_ml(pred, sp), network_dice=dice_score(net, mask),
                                         network_ml=mask_volume_ml(net, sp)))
                        print({k2: (round(v, 3) if isinstance(v, float) else v) for k2, v in rows[-1].items()},
                              flush=True)
    t = pd.DataFrame(rows)
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.round(4).to_csv(fig / 'native_sah.csv', index=False)
    s = (t.assign(volume_error=(t.predicted_ml / t.annotated_ml - 1).abs() * 100)
         .groupby(['trained', 'model', 'head', 'blood', 'reading'], sort=False)
         .agg(patients=('dice', 'size'), dice=('dice', 'mean'), network_dice=('network_dice', 'mean'),
              volume_error=('volume_error', 'median'), annotated_ml=('annotated_ml', 'median'),
              blood_flatten_hu=('blood_flatten_hu', 'median'),
              predicted_ml=('predicted_ml', 'median'), network_ml=('network_ml', 'median')).round(3).reset_index())
    (fig / 'native_sah.md').write_text(
        "# SAH in a real head at the scan's own resolution, read as a user's scan (ours: saharank's generator and "
        "models, smoke size; not the paper's data)\n\nNew SAH patients (cisternal and pockets) made on each head's "
        "own voxel grid, read by `saharank.predict.segment_volume` with the run's post-processing: padded (before the "
        "models' canvas and slab thickness), on the canvas as slabs, and on the canvas flattened as the models' heads "
        "were (`flatten_bone_profile`, what `saharank predict` does with them); the blood at the generator's nominal "
        "HU, or carrying the head's HU profile against the distance from bone (`make_patients`). Dice and network "
        "Dice: means; volume "
        "error |predicted / annotated - 1| (%), annotated, predicted and network mL, and the HU the flattening takes "
        "off the annotated blood (blood_flatten_hu): medians. Deployable models trained on both heads (the patients "
        "are new); leave-one-head-out models never saw the head. Command: "
        f"`python bench/native_sah.py {run.name} --patients {a.patients}`.\n\n" + markdown_table(s))
    write_provenance(fig / 'native_sah_provenance.json', 'bench/native_sah.py', argv, r)
    print(s.to_string(index=False))


if __name__ == '__main__':
    main()
