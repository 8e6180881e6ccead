"""What a profile's reproduction costs, from measured training speed: `python bench/full_cost.py [--profile full]
[--device cuda] [--jobs J]`.

Counts the profile's training work (slices x epochs per run; pre-training of both networks, every strategy on
every fold, every adapter method and rank on every fold), measures seconds per training slice of each kind of run
in `saharank.training.train_model` itself (augmentation, mixed loss with the profile's contrast copies, bf16 and
channels_last as the profile sets them) on synthetic slices of the profile's size, and prints the projected wall
time of `saharank reproduce`. With `--jobs J`, J processes train at once (as `reproduce --jobs J` does) and the
aggregate speed is what counts. FLOPs per slice (torch's FlopCounterMode) are printed beside, to compare devices.
The engine is the one `reproduce` uses: slices resident on the device, augmentation on the device, and on CUDA the
step captured in a CUDA graph (`--no-graph`: eager, to compare); each timed epoch includes its run's warm-up and
capture, as every run pays them once. With the profile's `replicates` the training grid is repeated that many times.
Evaluation and cohort building are not counted (seconds, not minutes). A projection, not a run: check it
against the run's own `provenance.json` wall times.
"""
import argparse, time
import numpy as np
import torch

from saharank.settings import load_settings
from saharank.training import train_settings
from saharank.models import build_model, apply_strategy
from saharank.adapters import DEFAULT_LAYER_TYPES, add_adapters
from saharank.training import Slices, set_seed, slice_headroom_hu, train_model, select_device
from saharank.losses import mixed_loss


def model_for(kind, cfg):
    if kind == 'multiview':
        return apply_strategy(build_model('multiview', width=cfg['multiview_width'], norm=cfg['norm']), 'All')
    unet = build_model('unet', width=cfg['unet_width'], depth=cfg['unet_depth'], norm=cfg['norm'])
    if kind == 'unet': return unet
    method, rank = kind.split(':')
    return add_adapters(unet, method, int(rank), alpha=cfg['alpha_factor'] * int(rank),
                        layer_types=DEFAULT_LAYER_TYPES)


def seconds_per_slice(kind, cfg, device, n_slices, threads=None, barrier=None, graph=True):
    """Seconds per training slice of one epoch over `n_slices` synthetic slices (after a warm-up epoch; with
    `barrier`, every process starts its timed epoch at once)."""
    if threads: torch.set_num_threads(threads)
    set_seed(0)
    model = model_for(kind, cfg)
    s = cfg['image_size']
    rng = np.random.default_rng(0)
    img = rng.random((n_slices, 1, s, s), dtype=np.float32)
    mask = (img[:, 0] > 0.9).astype(np.uint8)
    # as load_slices gives them for the profile
    room = dict(window=tuple(cfg.window), headroom_hu=slice_headroom_hu(cfg))
    data = Slices(img, mask, np.zeros(n_slices, int), ['synthetic'], **room)
    kw = train_settings(cfg, 1, 0, device) | dict(empty_slice_fraction=1.0, cuda_graph=graph)
    train_model(model,
                Slices(img[:2 * cfg['batch_size']], mask[:2 * cfg['batch_size']],
                       np.zeros(2 * cfg['batch_size'], int), ['w'], **room),
                progress=False, **kw)
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()
    if barrier is not None: barrier.wait()
    t = time.perf_counter()
    train_model(model, data, progress=False, **kw)
    if torch.device(device).type == 'cuda': torch.cuda.synchronize()
    return (time.perf_counter() - t) / n_slices


def flops_per_slice(kind, cfg):
    from torch.utils.flop_counter import FlopCounterMode
    model = model_for(kind, cfg)
    s = cfg['image_size']
    x, y = torch.rand(1, 1, s, s), (torch.rand(1, s, s) > 0.9).float()
    with FlopCounterMode(display=False) as fc:
        mixed_loss(model, x, y, cfg['contrast_factors']).backward()
    return fc.get_total_flops()


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--profile', default='full')
    p.add_argument('--device', default='auto')
    p.add_argument('--jobs', type=int, default=1)
    p.add_argument('--slices', type=int, default=None,
                   help='synthetic slices timed per kind of run (default 32 batches)')
    p.add_argument('--no-graph', action='store_true', help='CUDA: time the eager step instead of the captured one')
    p.add_argument('--ranks', default='8,64,128', help='adapter ranks timed (others are interpolated by the nearest)')
    a = p.parse_args()
    cfg = load_settings(a.profile)
    dev = select_device(a.device)
    n = a.slices or 32 * cfg['batch_size']
    graph = not a.no_graph
    z = 32  # axial slices per patient: the 5-mm grid over the real CT (manifest 'shape')
    per_fold_train = (sum(cfg['sah_bin_counts']) - sum(cfg['sah_bin_counts']) // cfg['folds']) * z
    tbi_train = (cfg['tbi_patients'] - cfg['tbi_validation']) * z
    timed_ranks = [int(r) for r in a.ranks.split(',')]
    kinds = ['multiview', 'unet'] + [f'{m}:{r}' for m in cfg['adapter_methods'] for r in timed_ranks]
    print(f"profile {a.profile}: {cfg['image_size']}^2 slices, batch {cfg['batch_size']}, "
          f"{len(cfg['contrast_factors'])} contrast copies, amp {cfg['amp']}, channels_last {cfg['channels_last']}; "
          f"device {dev} ({torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, jobs {a.jobs}")
    sps, flops = {}, {}
    pool = None
    if a.jobs > 1:                      # one pool of J spawned processes for every kind: spawning costs seconds
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        ctx = mp.get_context('spawn')
        man, pool = ctx.Manager(), ProcessPoolExecutor(a.jobs, mp_context=ctx)
        threads = max(1, torch.get_num_threads() // a.jobs)
    for k in kinds:
        if pool is None: sps[k] = seconds_per_slice(k, cfg, str(dev), n, graph=graph)
        else:
            barrier = man.Barrier(a.jobs)
            each = list(pool.map(seconds_per_slice, [k] * a.jobs, [cfg] * a.jobs, [str(dev)] * a.jobs, [n] * a.jobs,
                                 [threads] * a.jobs, [barrier] * a.jobs, [graph] * a.jobs))
            sps[k] = max(each) / a.jobs          # J epochs of n slices, started together, done when the slowest ends
        flops[k] = flops_per_slice(k, cfg)
        print(f"  {k:>16}: {sps[k] * 1e3:8.2f} ms per training slice{' (aggregate)' if a.jobs > 1 else ''}, "
              f"{flops[k] / 1e9:7.1f} GFLOP per slice, {flops[k] / sps[k] / 1e12:6.2f} TFLOP/s")
    if pool is not None:
        pool.shutdown()
        man.shutdown()
    def nearest(m, r): return sps[f'{m}:{min(timed_ranks, key=lambda t: abs(t - r))}']
    work = {'pre-training (both networks)': tbi_train * cfg['pretrain_epochs'] * (sps['multiview'] + sps['unet']),
            'strategies': (len(cfg['strategies']) * cfg['folds'] * per_fold_train * cfg['finetune_epochs']
                           * sps['multiview']),
            'adapters': sum(cfg['folds'] * per_fold_train * cfg['finetune_epochs'] * nearest(m, r)
                            for m in cfg['adapter_methods'] for r in cfg['ranks'])}
    all_train = sum(cfg['sah_bin_counts']) * z
    work['deployable models (2, all SAH patients)'] = (all_train * cfg['finetune_epochs']
                                                       * (sps['multiview'] + max(sps[k] for k in kinds[2:])))
    replicates = int(cfg.get('replicates', 1) or 1)
    if replicates > 1:
        for k in list(work): work[k] *= replicates if not k.startswith('deployable') else 1
    runs = len(cfg['strategies']) * cfg['folds'] + len(cfg['adapter_methods']) * len(cfg['ranks']) * cfg['folds']
    print(f"work: pre-training {tbi_train} slices x {cfg['pretrain_epochs']} epochs x 2 networks; {runs} fine-tuning "
          f"runs of {per_fold_train} slices x {cfg['finetune_epochs']} epochs (strategies: upper bound, timed with "
          "every layer trainable; every slice counted, an upper bound when empty_slice_fraction < 1)")
    for k, v in work.items(): print(f"  {k:>30}: {v / 60:8.1f} min")
    total_flop = (tbi_train * cfg['pretrain_epochs'] * (flops['multiview'] + flops['unet'])
                  + runs * per_fold_train * cfg['finetune_epochs'] * flops['unet']) * replicates
    print(f"  {'projected training time':>30}: {sum(work.values()) / 60:8.1f} min  (jobs {a.jobs}, replicates "
          f"{replicates}, "
          f"step {'captured in a CUDA graph' if dev.type == 'cuda' and graph else 'eager'}; about {total_flop:.2e} "
          f"FLOP, {total_flop / sum(work.values()) / 1e12:.1f} TFLOP/s aggregate)")


if __name__ == '__main__':
    main()
