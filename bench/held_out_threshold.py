"""Can a rule applied after the network separate an unseen head's false positives from its blood? (issue #28: "clean
real heads: < 2 mL after post-processing and < 5 mL by the network", measured leave-one-head-out.)

    python bench/held_out_threshold.py runs/smoke       # the smoke run's leave-one-head-out models (about 3 min)

For each configuration the run's tables select and each head of its SAH cohort, the model fine-tuned without that
head (`heads_run.held_out_head_models`), alone and with left-right flip test-time augmentation (the setting
`test_time_flip`, `saharank.training.flip_averaged_logits`: the mean of its logits on a slice and on the slice
mirrored left-right, mirrored back; the flip the training augmentation draws), reads:
- the held-out head's own CT without blood, as `saharank predict` reads a scan: mL the network calls blood and mL
  after the run's post-processing (every voxel a false positive);
- the held-out head's SAH patients (the cohort's slices): mean Dice after post-processing and the sensitivity on
  its modified Fisher 1-2 (thin) patients;
- the training head's SAH patients (which the model was fine-tuned on): mean Dice, what a rule costs on seen blood;
under each rule: the probability threshold at 0.5 (the paper's argmax), 0.7 or 0.9; or the threshold at 0.5 and a
connected component (26-neighbourhood) of the post-processed mask kept only when it holds a voxel of probability at
least 0.95 or 0.99 (hysteresis; `seed`). Prints and writes (--figures, default figures/held-out-threshold/)
held_out_threshold.csv / .md and a provenance JSON. Nothing is asserted; no rule here is the package's.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import held_out_head_models, open_run, run_parser, write_provenance  # noqa: E402
from variants import markdown_table  # noqa: E402

RULES = (('threshold 0.5', 0.5, 0.), ('threshold 0.7', 0.7, 0.), ('threshold 0.9', 0.9, 0.),
         ('threshold 0.5, seed 0.95', 0.5, 0.95), ('threshold 0.5, seed 0.99', 0.5, 0.99))


def apply_rule(mask: np.ndarray, prob: np.ndarray, threshold: float, seed: float) -> np.ndarray:
    """`mask` (bool, a post-processed prediction at threshold 0.5) under a rule: voxels whose probability `prob` (same
    shape) reaches `threshold`; with `seed` > 0, then only the connected components (26-neighbourhood) that hold a
    voxel of probability >= `seed`. Bool, mask's shape."""
    m = mask & (prob >= threshold)
    if seed <= 0 or not m.any(): return m
    lab, n = ndi.label(m, structure=np.ones((3, 3, 3)))
    keep = np.zeros(n + 1, bool)
    keep[1:] = np.asarray(ndi.maximum(prob, lab, index=np.arange(1, n + 1))) >= seed
    return keep[lab]


def patient_rows(model, meta, r, ids) -> list[dict]:
    """Per SAH cohort patient of `ids` and rule: Dice and sensitivity after post-processing, the Fisher grade."""
    import nibabel as nib
    from saharank.evaluation import dice_score
    from saharank.training import blood_mask, predict_volume
    pp, grade = meta['postprocessing'], dict(zip(r.sah.id, r.sah.fisher_grade))
    rows = []
    for i in ids:
        hu = np.asarray(nib.load(r.root / 'images' / f'{i}.nii.gz').dataobj, np.float32)
        y = np.asarray(nib.load(r.root / 'masks' / f'{i}.nii.gz').dataobj) > 0
        ic = np.asarray(nib.load(r.root / 'intracranial' / f'{i}.nii.gz').dataobj) > 0
        p = predict_volume(model, hu, meta['window'], brain_reference_hu=meta['brain_reference_hu'],
                           test_time_flip=bool(meta.get('test_time_flip')))
        m0 = blood_mask(p >= 0.5, hu, pp.get('blood_min_hu'), meta['brain_reference_hu'],
                        ic if pp.get('intracranial') else None)
        for rule, t, s in RULES:
            m = apply_rule(m0, p, t, s)
            rows.append(dict(id=i, fisher_grade=grade[i], rule=rule, dice=dice_score(m, y),
                             sensitivity=float((m & y).sum() / max(int(y.sum()), 1))))
    return rows


def clean_rows(model, meta, ct, head) -> list[dict]:
    "Per rule: mL the network and the post-processing call blood on the clean head `ct`, read as predict reads it."
    from saharank.predict import segment_volume
    from saharank.data import voxel_spacing
    pred, prob = segment_volume(model, ct.hu, ct.affine, meta['window'], meta['pixel_mm'], 0.5, 'cpu',
                                brain_reference_hu=meta['brain_reference_hu'], name=head,
                                postprocessing=meta['postprocessing'], canvas_px=meta['canvas_px'],
                                slab_mm=meta['slab_mm'], flatten=bool(meta.get('flatten_bone_profile')),
                                test_time_flip=bool(meta.get('test_time_flip')))
    ml = float(np.prod(voxel_spacing(ct.affine))) / 1000.
    return [{'rule': rule, 'clean head mL, network': round(float((prob >= t).sum()) * ml, 1),
             'clean head mL, post-processed': round(float(apply_rule(pred.astype(bool), prob, t, s).sum()) * ml, 1)}
            for rule, t, s in RULES]


def main(argv=None) -> None:
    a = run_parser(__doc__, 'held-out-threshold',
                   run_help='a finished run folder with leave-one-head-out runs (e.g. runs/smoke)').parse_args(argv)
    r = open_run(a.run, a.cache_dir)
    out = []
    for name, head, model, meta in held_out_head_models(r):
        for tta in (False, True):
            read = meta | {'test_time_flip': tta}
            held = pd.DataFrame(patient_rows(model, read, r, r.sah.id[r.sah['head'] == head]))
            seen = pd.DataFrame(patient_rows(model, read, r, r.sah.id[r.sah['head'] != head]))
            thin = held[held.fisher_grade <= 2]
            for c in clean_rows(model, read, r.heads[head], head):
                rule = c['rule']
                out.append({'model': name, 'held-out head': head, 'flip TTA': 'yes' if tta else 'no', **c,
                            'held-out Dice': round(held[held.rule == rule].dice.mean(), 3),
                            'held-out Fisher 1-2 sensitivity': round(thin[thin.rule == rule].sensitivity.mean(), 3),
                            'training head Dice': round(seen[seen.rule == rule].dice.mean(), 3)})
            print(name, head, 'TTA' if tta else '', flush=True)
    t = pd.DataFrame(out)
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / 'held_out_threshold.csv', index=False)
    md = markdown_table(t)
    (fig / 'held_out_threshold.md').write_text(
        "# Rules after the network on a held-out head (ours: saharank's cohorts, smoke size)\n\n"
        "Leave-one-head-out models (trained without the head), alone and with left-right flip test-time "
        "augmentation, under a probability threshold of 0.5 (the paper's), 0.7 or 0.9, or a threshold of 0.5 with "
        "components kept only when they hold a voxel of probability >= 0.95 / 0.99 (seed). Clean head: the held-out "
        "head's own CT without blood read as `saharank predict` reads it (all false positives, mL). Held-out: its SAH "
        "patients (mean Dice after post-processing; sensitivity on modified Fisher 1-2). Training head: the patients "
        "the model was fine-tuned on. Command: "
        f"`python bench/held_out_threshold.py {r.run.name}`.\n\n" + md)
    write_provenance(fig / 'held_out_threshold_provenance.json', 'bench/held_out_threshold.py', argv, r)
    print(t.to_string(index=False))


if __name__ == '__main__':
    main()
