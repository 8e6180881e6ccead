"""Is what keeps a model from an unseen head the skull's HU profile? The smoke run with each head's parenchyma HU
flattened against the distance from bone (issue #28: held-out-head Dice and clean held-out heads).

    python bench/flatten_heads.py --baseline runs/smoke          # runs/smoke-flat (about 10 min), then the table
    python bench/flatten_heads.py --baseline runs/smoke --table-only

dicom2stl's ct_head is brighter near bone than Cranium (its parenchyma 0-6 mm from bone at a median 41-53 HU after
calibration, Cranium's at 26-29; 10-15 mm from bone in the lowest third of the intracranial space 35 HU against 30:
cupping and beam hardening of the skull base). `flatten_anatomy` removes that profile from a template head: per axial
slab of 20 mm, the slab's deep parenchyma (>= 25 mm from bone, else >= 15 mm) is brought to the head's, and the excess
median HU of the parenchyma in distance shells (0-3, 3-6, 6-10, 10-15, 15-25 mm) over that deep parenchyma is
subtracted from every intracranial voxel, interpolated over the distance. The run is `saharank reproduce --profile
smoke` with `saharank.experiment.load_heads` returning flattened heads: the cohorts (both heads) and the clean
held-out heads of the leave-one-head-out check are made from them (the check therefore reads a head corrected with
its own exact tissue labels, which `saharank predict` does not have). Prints and writes (--figures, default
figures/flatten-heads/) flatten_heads.csv / .md and a provenance JSON: for the baseline run and the flattened one,
Table 2's and Table 3's best Dice, the held-out rows and the robustness rows (`resolution.held_out`,
`resolution.robustness`). Not the package's: a lead, measured once.
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resolution import held_out, robustness  # noqa: E402
from variants import markdown_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHELLS_MM = (0., 3., 6., 10., 15., 25.)


def flatten_anatomy(a, slab_mm: float = 20., shells_mm=SHELLS_MM, min_voxels: int = 200):
    """A copy of the template head `a` (`saharank.cohort.Anatomy`) whose intracranial HU (parenchyma, CSF, ventricles)
    is lowered, per axial slab of `slab_mm`, by the slab's excess: max(0, median HU of the slab's deep parenchyma (>=
    25 mm from bone, else >= 15 mm; >= 500 voxels, else the slab is left) - the head's deep parenchyma (>= 15 mm)),
    plus, interpolated over the distance from bone (mm, `scipy.ndimage.distance_transform_edt` on the voxel spacing),
    max(0, median HU of the slab's parenchyma in each shell of `shells_mm` (>= `min_voxels`) - the slab's deep
    parenchyma), 0 from the last shell's edge on. Bone, air and soft tissue outside are unchanged. Source: ours."""
    from dataclasses import replace
    from saharank.cohort import LABELS
    from saharank.data import voxel_spacing
    sp = voxel_spacing(a.affine)
    ic = np.isin(a.labels, (LABELS['parenchyma'], LABELS['csf'], LABELS['ventricle']))
    par = a.labels == LABELS['parenchyma']
    bone = ndi.distance_transform_edt(a.labels != LABELS['bone'], sampling=sp)
    hu = a.hu.astype(np.float32).copy()
    head_ref = float(np.median(hu[par & (bone >= 15)]))
    nz = max(1, int(round(slab_mm / sp[2])))
    for z0 in range(0, hu.shape[2], nz):
        p, d, h = par[..., z0:z0 + nz], bone[..., z0:z0 + nz], hu[..., z0:z0 + nz]
        deep = p & (d >= shells_mm[-1])
        if deep.sum() < 500: deep = p & (d >= 15)
        if deep.sum() < 500: continue
        ref = float(np.median(h[deep]))
        excess, at = [], []
        for lo, hi in zip(shells_mm[:-1], shells_mm[1:]):
            m = p & (d >= lo) & (d < hi)
            if m.sum() >= min_voxels:
                excess.append(max(0., float(np.median(h[m])) - ref))
                at.append(float(np.mean(d[m])))
        corr = max(0., ref - head_ref) + (np.interp(d, at + [shells_mm[-1]], excess + [0.], right=0.) if at else 0.)
        h -= np.where(ic[..., z0:z0 + nz], corr, 0.).astype(np.float32)
    return replace(a, hu=hu)


def run_flattened(out: Path) -> None:
    "`saharank reproduce --profile smoke --out OUT --quiet` in this process, with flattened template heads."
    import saharank.experiment as experiment
    from saharank.cli import main as cli
    load = experiment.load_heads
    experiment.load_heads = lambda names, **kw: {n: flatten_anatomy(a) for n, a in load(names, **kw).items()}
    if cli(['reproduce', '--profile', 'smoke', '--out', str(out), '--quiet']):
        sys.exit(f"{out}: reproduce with flattened heads failed")


def summary(run: Path) -> dict:
    """One column of the table: the run's best strategy and adapter (mean Dice over its SAH patients), its held-out
    rows and its robustness rows."""
    per = pd.read_csv(run / 'per_patient.csv', usecols=['model', 'experiment', 'dice'])
    row = {}
    for exp, label in (('strategy', 'Table 2 best strategy'), ('adapter', 'Table 3 best adapter')):
        d = per[per.experiment == exp].groupby('model').dice.mean()
        row[f'{label} (model, Dice)'] = f"{d.idxmax()}, {d.max():.3f}"
    return row | held_out(run) | robustness(run)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--baseline', required=True, help='a smoke run of the same commit (e.g. runs/smoke)')
    ap.add_argument('--out', default='runs/smoke-flat', help='the flattened run (default runs/smoke-flat)')
    ap.add_argument('--figures', default=str(ROOT / 'figures' / 'flatten-heads'))
    ap.add_argument('--table-only', action='store_true')
    a = ap.parse_args(argv)
    base, flat = Path(a.baseline), Path(a.out)
    if not a.table_only: run_flattened(flat)
    t = pd.DataFrame([summary(base), summary(flat)], index=['baseline', 'flattened heads']).T.reset_index()
    t.columns = ['', 'baseline', 'flattened heads']
    fig = Path(a.figures)
    fig.mkdir(parents=True, exist_ok=True)
    t.to_csv(fig / 'flatten_heads.csv', index=False)
    md = ("# Template heads flattened against the distance from bone (ours: saharank's cohorts, smoke size)\n\n"
          "The smoke run (`baseline`) and the same run with each template head's parenchyma HU profile against the "
          "distance from bone removed (`flattened heads`, `bench/flatten_heads.py`): Tables 2-3's best Dice; the "
          "leave-one-head-out and leave-one-pattern-out rows (Dice in / out, volume error out, the clean held-out "
          "head in mL: network / post-processed; the flattened run's clean heads are flattened with their own tissue "
          "labels); the robustness report's median volume change (cross-validation test folds). One training each.\n\n"
          + markdown_table(t))
    (fig / 'flatten_heads.md').write_text(md)
    from saharank.core import versions
    prov = dict(command='python bench/flatten_heads.py ' + ' '.join(argv if argv is not None else sys.argv[1:]),
                versions=versions(),
                runs={k: json.loads((p / 'provenance.json').read_text()).get('device_name')
                      for k, p in (('baseline', base), ('flattened heads', flat))})
    (fig / 'flatten_heads_provenance.json').write_text(json.dumps(prov, indent=1, default=str) + '\n')
    print(md)


if __name__ == '__main__':
    main()
