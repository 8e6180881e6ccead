"""Seconds of `train_model` for two epochs on a smoke-size SAH cohort, per kind of run: to compare two versions of the
training code on the same data and machine. Usage (from the repository root, after a smoke run made runs/smoke):

    git archive OLD_COMMIT saharank | tar -x -C /path/to/old        # the code to compare against
    PYTHONPATH=/path/to/old python bench/train_speed.py before; python bench/train_speed.py after   # alternate, twice

Prints the label, the seconds per kind of run and their total. Works with both the engine's `train_model` and the
loop before it (only arguments both take are passed)."""
import sys, time
import pandas as pd
import torch
from saharank.training import load_slices, train_model, set_seed
from saharank.models import build_model, apply_strategy
from saharank.adapters import add_adapters

root = sys.argv[2] if len(sys.argv) > 2 else 'runs/smoke/cohorts/sah'
data = load_slices(root, list(pd.read_csv(f'{root}/manifest.csv').id)[:20])
kw = dict(epochs=2, lr=1e-3, batch_size=16, seed=0, empty_slice_fraction=0.15, elastic_alpha_px=6 / 3.75,
          elastic_sigma_px=12 / 3.75, progress=False)
res = {}
for kind in ('multiview-All', 'unet-convLoRA64', 'unet-CP-DoRA64'):
    set_seed(0)
    if kind.startswith('multiview'): m = apply_strategy(build_model('multiview', width=8), 'All')
    else:
        m = build_model('unet', width=8, depth=3)
        add_adapters(m, 'convlora' if 'conv' in kind else 'cp-dora', 64, alpha=128,
                     layer_types=(torch.nn.Conv2d, torch.nn.Linear))
    t = time.perf_counter()
    train_model(m, data, **kw)
    res[kind] = time.perf_counter() - t
print(sys.argv[1] if len(sys.argv) > 1 else 'this', {k: round(v, 2) for k, v in res.items()}, 'total',
      round(sum(res.values()), 2))
