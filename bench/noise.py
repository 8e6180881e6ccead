"""Robustness to noise where a scanner puts it and where the robustness report puts it (issue #28 goal: "noise
15 HU: median volume change <= 15 %").

    python bench/noise.py runs/smoke                  # the smoke run's deployable models
    python bench/noise.py runs/smoke --patients 3     # three patients per head and pattern

The robustness report adds 15 HU of noise (correlated over 0.7 px, as a reconstruction kernel makes it) to the
cohort's 3.75 x 3.75 x 5 mm voxels; a scanner's noise lives on its own voxels (0.5-1 mm pixels, 1-5 mm slices), and
`saharank predict` averages it when it reads the scan at the models' pixel and slice thickness. Here the same new
patients as `bench/pixel_size.py` (made on each head's own voxels by `saharank.cohort.make_patient`, seeds 20_000 + k;
no noise added by the generator) are read by `saharank.predict.segment_volume` as `saharank predict` reads a scan:
with 0, 15, 30 and 60 HU of kernel-correlated noise on the scan's own voxels (0.96-1.01 mm pixels), and scanned at the
models' 3.75 mm pixel (`pixel_size.scanned_at`) with 0, 6 and 15 HU on those pixels (the report's perturbation,
`saharank.robustness._noise`). Volume change: |mL / mL of the same scan without noise - 1| (%), same model; the
noise SD the network reads: the SD of the difference between the noisy and the clean scan as the network reads them
(`read_slices`: slabs of the models' slice thickness, pixels of their size); whether `saharank predict` warns of the
noise (`saharank.predict.physics_qc`: `noise_sd_hu` of the scan above the model card's `qc.noise_hu_range`).
Prints and writes (--figures, default figures/noise/) noise.csv, noise.md and a provenance JSON. Nothing is asserted.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import deployable_models, new_patients, open_run, read_scan, run_parser, write_provenance  # noqa: E402
from pixel_size import scanned_at  # noqa: E402
from variants import markdown_table  # noqa: E402

SCAN_NOISE_HU = (0., 15., 30., 60.)      # on the scan's own voxels
PIXEL_NOISE_HU = (0., 6., 15.)           # on the models' 3.75 mm pixels (the robustness report's rows)


def noisy_scans(hu, mask, affine, seed: int) -> dict:
    """{(where, noise HU): (hu float32, mask uint8, affine)}: the scan at its own voxels ('scan voxels', with each of
    `SCAN_NOISE_HU`) and scanned at 3.75 mm ('model pixel', each of `PIXEL_NOISE_HU`), the noise kernel-correlated
    (`saharank.robustness._noise`) and seeded by `seed` and its place in the list."""
    from saharank.robustness import _noise
    h = np.asarray(hu, np.float32)
    scans = {'scan voxels': (h, np.asarray(mask, np.uint8), np.asarray(affine, float)),
             'model pixel': scanned_at(h, mask, affine, 3.75)}
    out = {}
    for where, levels in (('scan voxels', SCAN_NOISE_HU), ('model pixel', PIXEL_NOISE_HU)):
        x, m, a = scans[where]
        for i, n in enumerate(levels):
            noise = _noise(np.random.default_rng([seed, i]), x.shape, n) if n else 0.
            out[(where, n)] = ((x + noise).astype(np.float32), m, a)
    return out


def read_slices(h, affine, meta) -> np.ndarray:
    """The scan `h` (X, Y, Z HU, axial slices along the last axis) as the network reads it: slabs of `meta['slab_mm']`
    (`saharank.predict.read_as_slab`, when thinner), pixels of `meta['pixel_mm']` (`_resample_slices`); float32."""
    from saharank.data import voxel_spacing
    from saharank.predict import _resample_slices, read_as_slab
    sp = voxel_spacing(affine)
    x = read_as_slab(h, sp[2], meta['slab_mm']) if meta.get('slab_mm') else np.asarray(h, np.float32)
    return np.asarray(_resample_slices(x, (sp[0] / meta['pixel_mm'], sp[1] / meta['pixel_mm'], 1.)), np.float32)


def main(argv=None) -> None:
    ap = run_parser(__doc__, 'noise', patients=3)
    a = ap.parse_args(argv)
    from saharank.data import mask_volume_ml, voxel_spacing
    from saharank.evaluation import dice_score
    from saharank.predict import noise_sd_hu
    r = open_run(a.run, a.cache_dir)
    run, cfg = r.run, r.cfg
    models = deployable_models(r)
    noise_hi = models[0][2]['model_card']['qc']['noise_hu_range'][1]     # `predict` warns above it
    rows = []
    for head, pattern, k, info, hu, mask, affine in new_patients(r, a.patients):
        scans = noisy_scans(hu, mask, affine, seed=k + 7 * len(pattern))
        read = {key: read_slices(h, aff, models[0][2]) for key, (h, _, aff) in scans.items()}
        read_sd = {(w, n): float(np.std(x - read[(w, 0.)])) for (w, n), x in read.items()}
        flagged = {key: (noise_sd_hu(h) or 0.) > noise_hi for key, (h, _, _) in scans.items()}
        for name, model, meta in models:
            for (where, noise), (h, m, aff) in scans.items():
                pred, prob = read_scan(model, meta, h, aff, cfg['threshold'])
                sp = voxel_spacing(aff)
                rows.append(dict(head=head, pattern=pattern, patient=k, fisher_grade=info['fisher_grade'],
                                 model=name, noise_at=where, noise_hu=noise, read_noise_hu=read_sd[(where, noise)],
                                 noise_warning=flagged[(where, noise)], annotated_ml=mask_volume_ml(m, sp),
                                 predicted_ml=mask_volume_ml(pred, sp),
                                 network_ml=mask_volume_ml(prob >= cfg['threshold'], sp), dice=dice_score(pred, m)))
    t = pd.DataFrame(rows)
    keys = ['head', 'pattern', 'patient', 'model', 'noise_at']
    ref = t[t.noise_hu == 0].set_index(keys).predicted_ml
    t['volume_change'] = (t.predicted_ml.to_numpy() / ref.reindex(pd.MultiIndex.from_frame(t[keys])).to_numpy()
                          - 1) * 100
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.round(4).to_csv(fig / 'noise.csv', index=False)
    s = (t.assign(abs_change=t.volume_change.abs())
         .groupby(['model', 'noise_at', 'noise_hu'], sort=False)
         .agg(patients=('dice', 'size'), dice=('dice', 'mean'), median_abs_volume_change=('abs_change', 'median'),
              read_noise_hu=('read_noise_hu', 'median'), noise_warning=('noise_warning', 'mean'),
              annotated_ml=('annotated_ml', 'median'),
              predicted_ml=('predicted_ml', 'median'), network_ml=('network_ml', 'median'))
         .round(3).reset_index())
    (fig / 'noise.md').write_text(
        "# Noise where a scanner puts it and where the robustness report puts it (ours: saharank's generator and "
        "models, smoke size; not the paper's data)\n\nNew SAH patients made on each head's own voxels, read as "
        "`saharank predict` reads a scan, with kernel-correlated noise on the scan's own voxels (0.96-1.01 mm "
        "pixels) or on the models' 3.75 mm pixels (the robustness report's rows). Dice: mean; median |volume "
        "change| against the same scan without noise, same model, %; read noise: the SD (HU) of the noise as the "
        "network reads it (slabs of 5 mm, pixels of 3.75 mm); noise warning: the share of scans `predict` warns about "
        f"(`noise_sd_hu` of the scan above the model card's {noise_hi:g} HU); annotated, predicted and network mL: "
        "medians. Goal "
        f"of issue #28: <= 15 % at 15 HU. Command: `python bench/noise.py {run.name} --patients {a.patients}`."
        "\n\n" + markdown_table(s))
    write_provenance(fig / 'noise_provenance.json', 'bench/noise.py', argv, r)
    print(s.to_string(index=False))


if __name__ == '__main__':
    main()
