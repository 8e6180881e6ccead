"""saharank's convLoRA / convDoRA against Hugging Face PEFT's conv LoRA / DoRA (PEFT is a test dependency):
the same factors give the same outputs; on a dilated conv (the multi-view Unet's M2 blocks) PEFT's LoRA
branch ignores the dilation and fails, ours does not."""
import copy

import pytest
import torch
from torch import nn

peft = pytest.importorskip("peft")
from peft import LoraConfig, get_peft_model  # noqa: E402

from saharank.adapters import add_adapters, adapter_layers  # noqa: E402


def net(dilation=1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=dilation, dilation=dilation), nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1))


def peft_and_ours(use_dora, dilation=1, r=4, alpha=8):
    base = net(dilation)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=r, lora_alpha=alpha, target_modules=["0", "2"], use_dora=use_dora))
    ours = add_adapters(copy.deepcopy(base), "convdora" if use_dora else "convlora", r, alpha=alpha)
    g = torch.Generator().manual_seed(1)
    for name, layer in adapter_layers(ours).items():
        p = theirs.base_model.model.get_submodule(name)
        with torch.no_grad():
            p.lora_A["default"].weight.copy_(torch.randn(p.lora_A["default"].weight.shape, generator=g) * 0.1)
            p.lora_B["default"].weight.copy_(torch.randn(p.lora_B["default"].weight.shape, generator=g) * 0.1)
            layer.lora_A.copy_(p.lora_A["default"].weight)                     # (R, c_in, k_h, k_w)
            layer.lora_B.copy_(p.lora_B["default"].weight[:, :, 0, 0])         # (c_out, R)
            if use_dora:
                m = p.lora_magnitude_vector["default"].weight
                m.copy_(m * (1 + 0.1 * torch.randn(m.shape, generator=g)))
                layer.magnitude.copy_(m.reshape(-1))
    return theirs.eval(), ours.eval()


@pytest.mark.parametrize("use_dora", [False, True])
def test_same_factors_same_outputs(use_dora):
    theirs, ours = peft_and_ours(use_dora)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("use_dora", [False, True])
def test_peft_count_equals_ours(use_dora):
    theirs, ours = peft_and_ours(use_dora)
    count = lambda m: sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert count(theirs) == count(ours)


def test_dilated_conv_breaks_peft_not_ours():
    theirs, ours = peft_and_ours(False, dilation=2)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = ours(x)
        merged = nn.functional.conv2d(x, adapter_layers(ours)["0"].merged_weight(), ours[0].base.bias, padding=2, dilation=2)
        torch.testing.assert_close(ours[0](x), merged)
        assert out.shape == (2, 4, 16, 16)
        with pytest.raises(RuntimeError):          # PEFT's lora_A is built without the base conv's dilation: sizes differ
            theirs(x)
