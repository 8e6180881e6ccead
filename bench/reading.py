"""How `saharank predict` reads a scan, and what the models then call blood on clean real heads (issue #28): the scan
padded to a multiple of 16 pixels at its own slice thickness (the reading before `canvas_px`), on the model's canvas
(`canvas_px`: the training slices' size), and on the canvas as slabs of the training slice thickness (`slab_mm`).

    python bench/reading.py runs/smoke                 # the smoke run's deployable and leave-one-head-out models

For each head of the run's SAH cohort, its own CT without blood (no blood anywhere: every voxel called blood is a
false positive) is read by `saharank.predict.segment_volume` with the run's post-processing, by the run's deployable
models (trained on both heads' patients: the head is in their training data) and by its leave-one-head-out models
(trained without that head: `saharank.grid.fold_model`, loaded from the run). Prints and writes (--figures, default
figures/reading/) reading.csv / .md and a provenance JSON: mL called blood, network alone and post-processed, per
reading. Nothing is asserted.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import deployable_models, held_out_head_models, open_run, run_parser, write_provenance  # noqa: E402
from variants import markdown_table  # noqa: E402

READINGS = {'padded to 16 px, own slices (before)': dict(canvas_px=False, slab_mm=False),
            'canvas': dict(canvas_px=True, slab_mm=False),
            'canvas and slabs (now)': dict(canvas_px=True, slab_mm=True)}


def clean_ml(model, meta: dict, ct, threshold: float) -> dict:
    """{reading: (network mL, post-processed mL)} of `model` (described by `meta`: window, pixel_mm, canvas_px,
    slab_mm, brain_reference_hu, postprocessing) on the head `ct` (an `Anatomy`) for each of `READINGS`."""
    from saharank.data import voxel_spacing
    from saharank.predict import segment_volume
    ml = float(np.prod(voxel_spacing(ct.affine))) / 1000.
    out = {}
    for name, use in READINGS.items():
        mask, prob = segment_volume(model, ct.hu, ct.affine, tuple(meta['window']), float(meta['pixel_mm']),
                                    threshold, 'cpu', brain_reference_hu=meta.get('brain_reference_hu'),
                                    postprocessing=meta.get('postprocessing'),
                                    canvas_px=meta['canvas_px'] if use['canvas_px'] else None,
                                    slab_mm=meta['slab_mm'] if use['slab_mm'] else None,
                                    flatten=bool(meta.get('flatten_bone_profile')),
                                    test_time_flip=bool(meta.get('test_time_flip')))
        out[name] = (round((prob >= threshold).sum() * ml, 1), round(float(mask.sum()) * ml, 1))
    return out


def main(argv=None) -> None:
    ap = run_parser(__doc__, 'reading',
                    run_help='a finished run folder with deployable models and leave-one-head-out runs')
    a = ap.parse_args(argv)
    r = open_run(a.run, a.cache_dir)
    run, cfg, heads = r.run, r.cfg, r.heads
    models = [(name, 'deployable (trained on both heads)', h, model, meta)
              for name, model, meta in deployable_models(r) for h in heads]
    models += [(name, 'leave-one-head-out (never saw the head)', head, model, meta)
               for name, head, model, meta in held_out_head_models(r)]
    rows = []
    for name, kind, head, model, meta in models:
        for reading, (net, post) in clean_ml(model, meta, heads[head], cfg['threshold']).items():
            rows.append(dict(model=name, trained=kind, head=head, reading=reading, network_ml=net, predicted_ml=post))
            print(rows[-1], flush=True)
    t = pd.DataFrame(rows)
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / 'reading.csv', index=False)
    wide = t.assign(ml=t.network_ml.map('{:g}'.format) + ' / ' + t.predicted_ml.map('{:g}'.format)).pivot(
        index=['trained', 'model', 'head'], columns='reading', values='ml')[list(READINGS)].reset_index()
    (fig / 'reading.md').write_text(
        "# What the models call blood on clean real heads, by how the scan is read (ours: saharank's cohorts, smoke "
        "size)\n\nEach head's own CT without blood, read by `saharank.predict.segment_volume` with the run's "
        "post-processing: mL called blood, network alone / post-processed (goal of issue #28: < 5 / < 2 mL). "
        f"Readings: {'; '.join(READINGS)}. Command: `python bench/reading.py {run.name}`.\n\n" + markdown_table(wide))
    write_provenance(fig / 'reading_provenance.json', 'bench/reading.py', argv, r)
    print(wide.to_string(index=False))


if __name__ == '__main__':
    main()
