"""Adapter benchmark: training-step and merged-inference time of every adapter method against full fine-tuning,
Hugging Face PEFT (where PEFT has the method) and the base model, on the classic Unet and the multi-view Unet, and
(`--models monai3d`) on a 3-D MONAI UNet with every Conv3d and ConvTranspose3d adapted (`layer_types='all'`).

Prints ratios measured in the same run (medians over interleaved rounds, with the interquartile range), never
absolute claims. Usage:

    python bench/bench_adapters.py                      # CPU defaults (batch 2, 128 x 128)
    python bench/bench_adapters.py --device cuda --size 256 --batch 8,2 --bf16 --channels-last   # GPU: step captured
                                                                                                   in a CUDA graph
    python bench/bench_adapters.py --device cuda --size 256 --batch 2 --copies 3 --no-graph      # the paper's
                                                                                                   geometry, eager
    python bench/bench_adapters.py --quick              # a smoke test of the script itself
    python bench/bench_adapters.py --models monai3d     # the 3-D row: MONAI UNet, batch 2 x 1 x 32^3 (needs monai)

The training step is the engine's own (`saharank.training.TrainStep`): the mixed loss over `--copies` contrast copies
in one batched forward, backward, Adam; on CUDA captured whole in a CUDA graph unless `--no-graph`. Every variant
(full fine-tuning, each adapter, PEFT, the base and merged models for inference) gets the same warm-up (`--warmup`
steps or calls, past the engine's warm-up and capture) and the same memory format, and rounds interleave the variants.
`--batch` takes a list (e.g. 8,2): one table per batch size.

Peak memory is read from torch.cuda.max_memory_allocated on CUDA; on the CPU the table gives the bytes of
trainable state (parameters + gradients + Adam moments) instead, since torch's CPU allocator has no peak counter.
"""
import argparse, copy, json, platform, statistics, sys, time

import torch
from torch import nn

from saharank.training import TrainStep

from saharank.adapters import (DEFAULT_LAYER_TYPES, METHOD_REGISTRY, METHOD_KEYS, add_adapters, get_method,
                               merge_adapters)
from saharank.models import MultiViewUNet, UNet

PEFT_OF = {'convlora': False, 'convdora': True}          # PEFT's conv LoRA / conv DoRA (use_dora)


def monai_unet3d(width):
    "MONAI's 3-D UNet: channels width, 2w, 4w, 8w, three strided down-samplings, one residual unit per level."
    from monai.networks.nets import UNet as MonaiUNet
    return MonaiUNet(spatial_dims=3, in_channels=1, out_channels=2, channels=tuple(width * 2 ** i for i in range(4)),
                     strides=(2, 2, 2), num_res_units=1)


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize()


def make_step(model, x, y, dev, bf16, graph, copies, mf):
    """The engine's training step (TrainStep) on a fixed batch: mixed loss over `copies` contrast copies, backward,
    Adam."""
    graph = graph and dev.type == 'cuda'
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4, capturable=graph)
    factors = (1.0, 0.8, 1.25, 0.64, 1.5625)[:copies]
    step = TrainStep(model.train(), opt, factors, autocast=bf16 and dev.type == 'cuda',
                     cuda_graph=graph, memory_format=mf)
    w = torch.ones(x.shape[0], device=dev)
    return lambda: step(x, y, w)


def make_infer(model, x, dev, bf16, mf):
    model = model.to(memory_format=mf).eval()
    @torch.no_grad()
    def infer():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
            model(x)
    return infer


def timed(fn, dev, reps):
    sync(dev)
    t = time.perf_counter()
    for _ in range(reps): fn()
    sync(dev)
    return (time.perf_counter() - t) / reps


def peft_model(base, use_dora, rank):
    from peft import LoraConfig, get_peft_model
    names = [n for n, m in base.named_modules() if type(m) is nn.Conv2d]
    return get_peft_model(copy.deepcopy(base),
                          LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=names, use_dora=use_dora))


def trainable_state_bytes(model):
    # weight, grad, 2 Adam moments
    return sum(p.numel() * p.element_size() * 4 for p in model.parameters() if p.requires_grad)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--batch', default='2', help='batch sizes, comma-separated: one table each (default 2)')
    ap.add_argument('--width', type=int, default=32)
    ap.add_argument('--copies', type=int, default=1,
                    help='contrast copies of the mixed loss in the batched forward (paper: 3)')
    ap.add_argument('--no-graph', action='store_true',
                    help='CUDA: run the step eagerly instead of capturing it in a CUDA graph')
    ap.add_argument('--warmup', type=int, default=8,
                    help='warm-up steps/calls of every variant before timing (default 8)')
    ap.add_argument('--ranks', default='8,64,128')
    ap.add_argument('--rounds', type=int, default=5)
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--bf16', action='store_true')
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--json', default=None, help='also write the raw medians here')
    ap.add_argument('--methods', default=','.join(METHOD_KEYS),
                    help='adapter methods to time (default: the paper\'s six)')
    ap.add_argument('--models', default='unet,multiview',
                    help='networks, comma-separated: unet, multiview, monai3d (default: unet,multiview)')
    ap.add_argument('--size3d', type=int, default=32, help='monai3d: input edge (voxels; default 32)')
    ap.add_argument('--width3d', type=int, default=8, help='monai3d: channels of the first level (default 8)')
    a = ap.parse_args(argv)
    methods = [m.strip() for m in a.methods.split(',')]
    def known(m):
        try: return get_method(m).key
        except ValueError: return None
    bad = [m for m in methods if known(m) is None]
    if bad: ap.error(f"--methods: unknown {bad}; known: {', '.join(METHOD_REGISTRY)}")
    methods = [known(m) for m in methods]
    if a.quick: a.size, a.width, a.ranks, a.rounds, a.reps, a.size3d, a.width3d = 32, 4, '2', 2, 1, 16, 4
    dev = torch.device(a.device)
    ranks = [int(r) for r in a.ranks.split(',')]
    try: import peft  # noqa: F401
    except ImportError: peft = None
    torch.manual_seed(0)
    print(f"# saharank adapter benchmark: {platform.processor() or platform.machine()}, {dev}"
          f"{' ' + torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, batch {a.batch}, contrast copies {a.copies}, warm-up {a.warmup}, "
          f"2-D input {a.size} x {a.size} width {a.width}, 3-D input {a.size3d}^3 width {a.width3d}, bf16 {a.bf16}, "
          f"channels_last {a.channels_last}, {a.rounds} interleaved rounds x {a.reps} steps; "
          f"command: python bench/bench_adapters.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    results = {}
    nets = {'unet': ('Unet', lambda: UNet(width=a.width, depth=4)),
            'multiview': ('multi-view Unet', lambda: MultiViewUNet(width=a.width)),
            'monai3d': (f'3-D MONAI UNet (Conv3d + ConvTranspose3d, 1 x {a.size3d}^3, width {a.width3d})',
                        lambda: monai_unet3d(a.width3d))}
    unknown = [n for n in a.models.split(',') if n.strip() not in nets]
    if unknown: ap.error(f"--models: unknown {unknown}; known: {', '.join(nets)}")
    for batch in [int(b) for b in str(a.batch).split(',')]:
        for model_key, (model_name, build) in [(n.strip(), nets[n.strip()]) for n in a.models.split(',')]:
            three_d = model_key == 'monai3d'
            base = build().to(dev)
            mf = ((torch.channels_last_3d if three_d else torch.channels_last) if a.channels_last
                  else torch.contiguous_format)
            base = base.to(memory_format=mf)
            shape = (a.size3d,) * 3 if three_d else (a.size, a.size)
            x = torch.randn(batch, 1, *shape, device=dev).to(memory_format=mf)
            y = torch.randint(0, 2, (batch, *shape), device=dev)
            variants = {'full': copy.deepcopy(base).requires_grad_(True)}
            layer_types = 'all' if three_d else DEFAULT_LAYER_TYPES   # 3-D: the decoder's transposed convs too
            for m in methods:
                for r in ranks:
                    variants[f'{get_method(m).display} R={r}'] = add_adapters(copy.deepcopy(base), m, r,
                                                                              layer_types=layer_types)
            if not three_d and peft is not None:
                dilated = any(getattr(mod, 'dilation', (1, 1)) != (1, 1) for mod in base.modules()
                              if isinstance(mod, nn.Conv2d))
                for m, dora in PEFT_OF.items():
                    if m not in methods: continue
                    for r in ranks:
                        if dilated: continue  # PEFT's conv LoRA ignores dilation: it cannot run on M2
                        variants[f'PEFT {get_method(m).display} R={r}'] = peft_model(base, dora, r).to(dev)
            steps = {k: make_step(v, x, y, dev, a.bf16, not a.no_graph, a.copies, mf) for k, v in variants.items()}
            for f in steps.values():  # the same warm-up for every variant (engine warm-up + capture)
                for _ in range(a.warmup): f()
            times = {k: [] for k in steps}
            mem = {}
            for _ in range(a.rounds):                              # interleaved: each round times every variant once
                for k, f in steps.items(): times[k].append(timed(f, dev, a.reps))
            for k, v in variants.items():
                if dev.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats(dev)
                    steps[k]()
                    sync(dev)
                    mem[k] = torch.cuda.max_memory_allocated(dev)
                else: mem[k] = trainable_state_bytes(v)
            infer = {'base': make_infer(copy.deepcopy(base), x, dev, a.bf16, mf)}
            for k, v in variants.items():
                if k == 'full' or k.startswith('PEFT'): continue
                infer[k] = make_infer(merge_adapters(copy.deepcopy(v)), x, dev, a.bf16, mf)
            for f in infer.values():
                for _ in range(a.warmup): f()
            itimes = {k: [] for k in infer}
            for _ in range(a.rounds):
                for k, f in infer.items(): itimes[k].append(timed(f, dev, a.reps))
            med = {k: statistics.median(v) for k, v in times.items()}
            imed = {k: statistics.median(v) for k, v in itimes.items()}
            def spread(v):
                q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
                return q[0], q[2]
            print(f"\n## {model_name}, batch {batch} x {a.copies} contrast cop{'y' if a.copies == 1 else 'ies'}, step "
                  f"{'captured (CUDA graph)' if dev.type == 'cuda' and not a.no_graph else 'eager'}: training step "
                  f"relative to full fine-tuning ({med['full'] * 1e3:.1f} ms/step), "
                  f"merged inference relative to the base model ({imed['base'] * 1e3:.1f} ms/batch)\n")
            print("| variant | step / full (IQR) | step / PEFT | merged inference / base | "
                  + ("peak memory / full |" if dev.type == 'cuda' else "trainable state MB |"))
            print("|---|---|---|---|---|")
            for k in times:
                if k == 'full': continue
                lo, hi = spread([t / med['full'] for t in times[k]])
                peft_key = f"PEFT {k}" if not k.startswith('PEFT') else None
                vs_peft = (f"{med[k] / med[peft_key]:.2f}" if peft_key in med
                           else ('n/a' if not k.startswith('PEFT') else ''))
                inf = f"{imed[k] / imed['base']:.3f}" if k in imed else ''
                m = f"{mem[k] / mem['full']:.2f}" if dev.type == 'cuda' else f"{mem[k] / 2**20:.1f}"
                print(f"| {k} | {med[k] / med['full']:.2f} ({lo:.2f}-{hi:.2f}) | {vs_peft} | {inf} | {m} |")
            if three_d: print("\nPEFT has no ConvTranspose3d LoRA: no PEFT rows for the 3-D network.")
            results[f'{model_name}, batch {batch}'] = dict(step_s=med, infer_s=imed, memory=mem)
    if a.json:
        with open(a.json, 'w') as f: json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
