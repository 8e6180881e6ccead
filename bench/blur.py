"""How much blur the models tolerate: the SAH cohort's patients blurred in-plane at the models' own grid, and at 1.5x
coarser pixels, read as `saharank predict` reads a scan (issue #28 goal "pixels 1.5x coarser").

    python bench/blur.py runs/smoke                 # every third SAH patient of the run (10 of 30)
    python bench/blur.py runs/smoke --every 1       # all of them

`bench/pixel_size.py` finds the deployable models calling a third less blood when the same patients are scanned at
5.6 mm pixels instead of 3.75 mm. `saharank predict` reads every scan at the models' 3.75 mm: a coarser scan reaches
the network interpolated, i.e. blurred. Here each selected patient of the run's SAH cohort (3.75 x 3.75 x 5 mm, its
own noise) is blurred by a Gaussian of SD 0.5, 0.75, 1 and 1.25 pixels in-plane (`blurred_scans`; 0.5-1 pixel is the
range the training's intensity augmentation blurs with, `intensity_blur_px`) and resampled to 1.5x coarser pixels
(`saharank.robustness.perturb`, the report's row); each scan is read by `saharank.predict.segment_volume` with the
run's deployable models. Volume change: mL / mL of the unblurred scan - 1 (%), signed, for the post-processed mask
and the network's own. Prints and writes (--figures, default figures/blur/) blur.csv, blur.md and a provenance JSON.
Nothing is asserted.
"""
from __future__ import annotations
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heads_run import deployable_models, open_run, run_parser, scan_rows, write_provenance  # noqa: E402
from variants import markdown_table  # noqa: E402

BLUR_PX = (0.5, 0.75, 1.0, 1.25)     # Gaussian SD, pixels of the models' grid


def blurred_scans(hu, mask, affine) -> dict:
    """{name: (hu float32, mask uint8, affine)}: 'none' (the scan), 'blur S px' for each S of `BLUR_PX` (an in-plane
    Gaussian of SD S pixels, scipy, the annotation unchanged) and 'pixel 1.5x coarser' (`saharank.robustness.perturb`:
    the scan and its annotation resampled to 1.5x the pixel)."""
    from scipy import ndimage as ndi
    from saharank.robustness import perturb
    h, m, a = np.asarray(hu, np.float32), np.asarray(mask, np.uint8), np.asarray(affine, float)
    out = {'none': (h, m, a)}
    for s in BLUR_PX: out[f'blur {s:g} px'] = (ndi.gaussian_filter(h, (s, s, 0)).astype(np.float32), m, a)
    out['pixel 1.5x coarser'] = perturb('pixel 1.5x coarser', h, m, a)
    return out


def main(argv=None) -> None:
    ap = run_parser(__doc__, 'blur')
    ap.add_argument('--every', type=int, default=3, help="every N-th SAH patient of the run's cohort (default 3)")
    a = ap.parse_args(argv)
    from saharank.data import load_case
    r = open_run(a.run, a.cache_dir)
    models = deployable_models(r)
    rows = []
    for cid in list(r.sah.id)[::a.every]:
        hu, mask, affine = load_case(r.root, cid)[:3]
        rows += scan_rows(models, blurred_scans(hu, mask, affine), r.cfg['threshold'], 'scan', id=cid)
    t = pd.DataFrame(rows)
    ref = t[t.scan == 'none'].set_index(['id', 'model'])
    key = pd.MultiIndex.from_frame(t[['id', 'model']])
    for col, name in (('predicted_ml', 'volume_change'), ('network_ml', 'network_change')):
        t[name] = (t[col].to_numpy() / ref[col].reindex(key).to_numpy() - 1) * 100
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.round(4).to_csv(fig / 'blur.csv', index=False)
    s = (t.groupby(['model', 'scan'], sort=False)
         .agg(patients=('dice', 'size'), dice=('dice', 'mean'), median_volume_change=('volume_change', 'median'),
              median_network_change=('network_change', 'median'), predicted_ml=('predicted_ml', 'median'),
              network_ml=('network_ml', 'median'))
         .round(3).reset_index())
    (fig / 'blur.md').write_text(
        "# Blur at the models' grid and 1.5x coarser pixels (ours: saharank's cohort and models, smoke size; not the "
        "paper's data)\n\nThe run's SAH cohort patients blurred in-plane (Gaussian SD in pixels of 3.75 mm) or "
        "resampled to 1.5x coarser pixels, read as `saharank predict` reads a scan. Dice: mean; median volume change "
        "(post-processed) and network change (the network's own mask) against the unblurred scan, same model, %, "
        "signed; predicted and network mL: medians. Command: "
        f"`python bench/blur.py {r.run.name} --every {a.every}`.\n\n" + markdown_table(s))
    write_provenance(fig / 'blur_provenance.json', 'bench/blur.py', argv, r)
    print(s.to_string(index=False))


if __name__ == '__main__':
    main()
