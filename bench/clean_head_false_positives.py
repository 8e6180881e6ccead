"""Where do the networks call blood on a clean head they never saw? (issue #28: "clean real heads: < 2 mL after
post-processing and < 5 mL by the network", measured leave-one-head-out.)

    python bench/clean_head_false_positives.py runs/smoke                 # the smoke run's leave-one-head-out models

For each configuration the run's tables select (`saharank.deploy.best_configurations`) and each head of its SAH
cohort, the model fine-tuned without that head (the run's leave-one-head-out run, loaded or, when its files are
missing, trained again with the run's seeds by `saharank.grid.fold_model`) reads that head's own CT without blood as
`saharank predict` does (`saharank.predict.segment_volume`, with the fold's post-processing). The voxels it calls
blood are all false positives; they are described by where they lie (the head's tissue labels, `cohort.LABELS`; the
distance from the skull's bone in mm; the axial position as a fraction of the intracranial space's height, 0 at its
lowest slice) and by their HU after calibration to the brain. Prints and writes (--figures, default
figures/clean-head-false-positives/) clean_head_false_positives.csv / .md and a provenance JSON. Nothing is asserted.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import held_out_head_models, open_run, run_parser, write_provenance  # noqa: E402


def describe(pred, prob, ct, threshold: float, brain_reference_hu) -> dict:
    """The false positives of a clean head: `pred` (post-processed) and `prob` (the network's probability) on the
    grid of the head `ct` (an `Anatomy`: hu, labels, affine), in mL and where they lie."""
    from saharank.cohort import LABELS
    from saharank.data import calibrate_hu, voxel_spacing
    sp = voxel_spacing(ct.affine)
    ml = float(np.prod(sp)) / 1000.
    net = prob >= threshold
    hu = calibrate_hu(ct.hu, brain_reference_hu)
    bone_mm = ndi.distance_transform_edt(ct.labels != LABELS['bone'], sampling=sp)
    ic = np.isin(ct.labels, (LABELS['parenchyma'], LABELS['csf'], LABELS['ventricle']))
    z = np.nonzero(ic.any(axis=(0, 1)))[0]
    height = (np.arange(ct.hu.shape[2]) - z.min()) / max(1, z.max() - z.min())
    row = {'network mL': round(net.sum() * ml, 1), 'post-processed mL': round(pred.sum() * ml, 1)}
    for what, m in (('network', net), ('post-processed', pred.astype(bool))):
        n = max(int(m.sum()), 1)
        for name, code in LABELS.items():
            row[f'{what}: % in {name}'] = round(100 * (m & (ct.labels == code)).sum() / n, 1)
        d = bone_mm[m]
        for lo, hi in ((0, 5), (5, 15), (15, np.inf)):
            row[f'{what}: % {lo}-{hi} mm from bone'] = round(100 * ((d >= lo) & (d < hi)).sum() / n, 1)
        h = np.broadcast_to(height, m.shape)[m]
        row[f'{what}: % in the lowest third'] = round(100 * (h < 1 / 3).sum() / n, 1)
        row[f'{what}: calibrated HU median (IQR)'] = (
            f"{np.median(hu[m]):.0f} ({np.percentile(hu[m], 25):.0f}-{np.percentile(hu[m], 75):.0f})" if m.any()
            else '')
    return row


def main(argv=None) -> None:
    ap = run_parser(__doc__, 'clean-head-false-positives',
                    run_help='a finished run folder with leave-one-head-out runs (e.g. runs/smoke)')
    a = ap.parse_args(argv)
    from saharank.predict import segment_volume
    r = open_run(a.run, a.cache_dir)
    run, cfg, heads = r.run, r.cfg, r.heads
    rows = []
    for name, head, model, meta in held_out_head_models(r):
        ct = heads[head]
        pred, prob = segment_volume(model, ct.hu, ct.affine, meta['window'], meta['pixel_mm'], cfg['threshold'], 'cpu',
                                    brain_reference_hu=meta['brain_reference_hu'], name=head,
                                    postprocessing=meta['postprocessing'], canvas_px=meta['canvas_px'],
                                    slab_mm=meta['slab_mm'], flatten=bool(meta.get('flatten_bone_profile')),
                                    test_time_flip=bool(meta.get('test_time_flip')))
        rows.append({'model': name, 'held-out head': head,
                     **describe(pred, prob, ct, cfg['threshold'], cfg.get('brain_reference_hu'))})
        print(rows[-1], flush=True)
    t = pd.DataFrame(rows)
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / 'clean_head_false_positives.csv', index=False)
    cols = [f"{r['model']} on {r['held-out head']}" for r in rows]
    md = '| | ' + ' | '.join(cols) + ' |\n|' + '---|' * (len(cols) + 1) + '\n'
    md += ''.join(f"| {c} | " + ' | '.join(str(v) for v in t[c]) + ' |\n' for c in t.columns[2:])
    (fig / 'clean_head_false_positives.md').write_text(
        "# Where the networks call blood on a clean head they never saw (ours: saharank's cohorts, smoke size)\n\n"
        "Leave-one-head-out models (trained without the head) on that head's own CT without blood, read as `saharank "
        "predict` reads a scan: every voxel called blood is a false positive. Labels: the head's tissue labels "
        "(`saharank.cohort.LABELS`); distance from the skull's bone; 'lowest third': of the intracranial space's "
        "height; HU calibrated to the brain (`brain_reference_hu`). Command: "
        f"`python bench/clean_head_false_positives.py {run.name}`.\n\n" + md)
    write_provenance(fig / 'clean_head_false_positives_provenance.json', 'bench/clean_head_false_positives.py', argv,
                     r)
    print(t.T.to_string(header=False))


if __name__ == '__main__':
    main()
