"""CUDA checks of the training engine (run on a CUDA machine; about 30 s). Prints, per check, the measured difference.

1. The captured step (CUDA graph) against the eager step: the same 12 steps from the same weights and batches (float32,
   deterministic algorithms, cudnn.benchmark off): maximum difference of the losses and of the parameters.
2. Device augmentation on CUDA: reproducible from the seed of its torch.Generator; annotations stay binary.
3. train_model on CUDA with cuda_graph on and off, deterministic: the per-epoch losses.
Exit status 1 if a check fails its tolerance (given beside each)."""
import copy, sys
import numpy as np
import torch
from saharank.models import build_model
from saharank.adapters import add_adapters, DEFAULT_LAYER_TYPES
from saharank.losses import augment_batch
from saharank.training import TrainStep, Slices, set_seed, train_model

assert torch.cuda.is_available(), "this script needs a CUDA device"
dev = torch.device('cuda')
ok = True
print('device', torch.cuda.get_device_name(), 'torch', torch.__version__)
set_seed(0)
for name, method in (('full fine-tuning', None), ('CP-DoRA R=64', 'cp-dora')):
    net0 = build_model('unet', width=16, depth=4)
    if method: add_adapters(net0, method, 64, layer_types=DEFAULT_LAYER_TYPES)
    net0 = net0.to(dev)
    g = torch.Generator(device=dev).manual_seed(1)
    batches = [(torch.rand(4, 1, 128, 128, device=dev, generator=g),
                (torch.rand(4, 128, 128, device=dev, generator=g) > 0.9).to(torch.uint8)) for _ in range(12)]
    w = torch.tensor([1., 1., 1., 0.], device=dev)  # one padding slice, as the engine's last batch
    out = {}
    for graph in (False, True):
        net = copy.deepcopy(net0)
        opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3, capturable=True)
        step = TrainStep(net, opt, (1.0, 0.8, 1.25), cuda_graph=graph)
        losses = torch.stack([step(x, y, w) for x, y in batches])
        out[graph] = (losses, [p.detach().clone() for p in net.parameters()], step.graph is not None)
    dl = (out[True][0] - out[False][0]).abs().max().item()
    dp = max((a - b).abs().max().item() for a, b in zip(out[True][1], out[False][1]))
    good = out[True][2] and dl < 1e-4 and dp < 1e-4
    ok &= good
    print(f"{name}: graph captured {out[True][2]}; 12 steps graph vs eager: max |loss diff| {dl:.2e}, max |param "
          f"diff| {dp:.2e} (tolerance 1e-4) {'OK' if good else 'FAIL'}")
x = torch.rand(8, 1, 64, 64, device=dev)
y = (torch.rand(8, 64, 64, device=dev) > 0.8).float()
a = augment_batch(x, y, torch.Generator(device=dev).manual_seed(3))
b = augment_batch(x, y, torch.Generator(device=dev).manual_seed(3))
good = torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and set(a[1].unique().tolist()) <= {0.0, 1.0}
ok &= good
print(f"device augmentation on CUDA: reproducible and binary masks {'OK' if good else 'FAIL'}")
rng = np.random.default_rng(0)
img = rng.random((40, 1, 64, 64), dtype=np.float32)
mask = (img[:, 0] > 0.9).astype(np.uint8)
hist = {}
for graph in (False, True):
    set_seed(0)
    m = build_model('unet', width=8, depth=3)
    hist[graph] = train_model(m, Slices(img, mask, np.zeros(40, int), ['s']), epochs=3, batch_size=6, device='cuda',
                              progress=False, cuda_graph=graph)
d = max(abs(p - q) for p, q in zip(hist[True], hist[False]))
good = d < 1e-4
ok &= good
print(f"train_model on CUDA, graph vs eager (40 slices, batch 6: a padded last batch): epoch losses {hist[True]} vs "
      f"{hist[False]}, max diff {d:.2e} {'OK' if good else 'FAIL'}")
sys.exit(0 if ok else 1)
