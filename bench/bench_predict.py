"""Time `saharank predict` on a 256 x 256 x ~30 head CT (a patient made from the real CT, SAH 60 mL) with the
paper-size networks (classic Unet width 32 depth 4, multi-view Unet width 32; untrained weights: only the time
means anything). Usage: python bench/bench_predict.py [--device cpu] [--repeats 3]. Prints seconds per scan."""
import argparse, statistics, tempfile, time
from pathlib import Path

import numpy as np
import torch

from saharank.cohort import cranium_anatomy, grid_for, make_patient
from saharank.data import save_nifti
from saharank.models import build_model
from saharank.predict import predict_scan
from saharank.training import save_checkpoint


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    anatomy = cranium_anatomy()
    grid = grid_for(anatomy, 256)
    hu, _ = make_patient(anatomy, grid, np.random.default_rng(0), sah_ml=60.)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        scan = save_nifti(hu, grid.affine, d / 'scan.nii.gz', dtype=np.int16)
        print(f"# scan {hu.shape} voxels of {grid.spacing} mm; device {a.device}; torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")
        for name, kw in (('unet', dict(width=32, depth=4)), ('multiview', dict(width=32))):
            torch.manual_seed(0)
            ck = save_checkpoint(build_model(name, **kw), d / f'{name}.safetensors',
                                 dict(model=name, kwargs=kw, window=[40, 120], pixel_mm=grid.spacing[0]))
            times = []
            for i in range(a.repeats):
                t = time.perf_counter()
                predict_scan(scan, ck, d / f'out-{name}-{i}', device=a.device)
                times.append(time.perf_counter() - t)
            print(f"{name}: median {statistics.median(times):.2f} s per scan (min {min(times):.2f}, max "
                  f"{max(times):.2f}); target <= 30 s on a 2-core CPU")


if __name__ == '__main__':
    main()
