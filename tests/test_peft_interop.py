"""saharank's convLoRA / convDoRA against Hugging Face PEFT's conv LoRA / DoRA (PEFT is a test dependency):
the same factors give the same outputs; on a dilated conv (the multi-view Unet's M2 blocks) PEFT's LoRA
branch ignores the dilation and fails, ours does not."""
import copy

import pytest
import torch
from torch import nn

import required  # noqa: E402  (pytest puts tests/ on sys.path)


def import_or_skip(name: str):
    """`name` imported; otherwise a skip that says why (the import error, and the usual cause), or, in CI (env
    CI=true), a failure: CI must run these tests, not skip them."""
    return required.import_or_skip(name, "the PEFT interoperability tests",
                                   "PEFT is a test dependency (pip install -e '.[dev]'); if the error comes from "
                                   "torchvision (through transformers), uninstall it or install the torchvision "
                                   "build that matches torch")


peft = import_or_skip("peft")
from peft import LoraConfig, get_peft_model  # noqa: E402

from saharank.adapters import add_adapters, adapter_layers  # noqa: E402


def net(dilation=1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=dilation, dilation=dilation), nn.ReLU(),
                         nn.Conv2d(8, 4, 3, padding=1))


def peft_and_ours(use_dora, dilation=1, r=4, alpha=8):
    base = net(dilation)
    theirs = get_peft_model(copy.deepcopy(base),
                            LoraConfig(r=r, lora_alpha=alpha, target_modules=["0", "2"], use_dora=use_dora))
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
        merged = nn.functional.conv2d(x, adapter_layers(ours)["0"].merged_weight(),
                                      ours[0].base.bias, padding=2, dilation=2)
        torch.testing.assert_close(ours[0](x), merged)
        assert out.shape == (2, 4, 16, 16)
        with pytest.raises(RuntimeError):  # PEFT's lora_A is built without the base conv's dilation: sizes differ
            theirs(x)


# -- saharank.peft: our weight-space layers inside get_peft_model -------------------------------------------------

def _bridge():
    return import_or_skip("saharank.peft")


def same_dilated():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding='same', dilation=2), nn.ReLU(),
                         nn.Conv2d(4, 4, 3, padding=1, padding_mode='reflect'))


def test_peft_conv_lora_differs_from_its_merged_weight_ours_matches():
    """Regression (PEFT issue #3697): on a dilated conv with padding='same' and on a reflect-padded conv, PEFT's conv
    LoRA runs but is not the conv with its own merged weight W0 + dW; the bridge, with the same factors, is."""
    sp = _bridge()
    base = same_dilated()
    x = torch.randn(2, 3, 12, 12)
    theirs = get_peft_model(copy.deepcopy(base), LoraConfig(r=2, lora_alpha=4, target_modules=["0", "2"]))
    ours = get_peft_model(copy.deepcopy(base),
                          sp.lora_config('convlora', r=2, lora_alpha=4, target_modules=["0", "2"]))
    for i in (0, 2):
        t, o = theirs.base_model.model[i], ours.base_model.model[i]
        with torch.no_grad():
            t.lora_B["default"].weight.normal_()
            o.lora_saharank["default"]["A"].copy_(t.lora_A["default"].weight)
            o.lora_saharank["default"]["B"].copy_(t.lora_B["default"].weight[:, :, 0, 0])
            torch.testing.assert_close(o.get_delta_weight("default"), t.get_delta_weight("default"))
            xi = x if i == 0 else torch.randn(2, 4, 12, 12)
            merged = base[i]._conv_forward(xi, base[i].weight + t.get_delta_weight("default"), base[i].bias)
            assert (t(xi) - merged).abs().max() > 1e-2, ("PEFT's conv LoRA matches its merged weight: "
                                                         "issue #3697 fixed?")
            torch.testing.assert_close(o(xi), merged, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        out = ours(x)
        torch.testing.assert_close(ours.merge_and_unload()(x), out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["lora-c", "convlora", "cp-lora", "dora-c", "convdora", "cp-dora"])
def test_bridge_save_pretrained_from_pretrained(method, tmp_path):
    """PEFT's save_pretrained, then LoraConfig.from_pretrained + register + PeftModel.from_pretrained (as PEFT's docs
    prescribe for custom modules): the same outputs, bit for bit; also through saharank.peft's own pair."""
    sp = _bridge()
    from peft import PeftModel
    base = nn.Sequential(same_dilated(), nn.ConvTranspose2d(4, 2, 2, stride=2))
    x = torch.randn(1, 3, 8, 8)
    pm = get_peft_model(copy.deepcopy(base), sp.lora_config(method, r=3, model=base))
    assert sum(isinstance(m, sp.SaharankLoraLayer) for m in pm.modules()) == 3           # incl. the ConvTranspose2d
    with torch.no_grad():
        assert torch.equal(pm(x), base(x))
        for p in pm.parameters():
            if p.requires_grad: p.add_(0.1 * torch.randn_like(p))
        out = pm(x)
    pm.save_pretrained(tmp_path / "peft")
    config = sp.register(LoraConfig.from_pretrained(tmp_path / "peft"), method)
    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "peft", config=config)
    sp.save_pretrained(pm, tmp_path / "ours")
    with torch.no_grad():
        assert torch.equal(loaded(x), out)
        assert torch.equal(sp.from_pretrained(copy.deepcopy(base), tmp_path / "ours")(x), out)


def test_bridge_refuses_unsupported_peft_versions():
    sp = _bridge()
    lo, hi = sp.SUPPORTED_PEFT
    assert sp.check_peft_version(peft.__version__) == peft.__version__
    with pytest.raises(ImportError, match=rf"supports peft>={lo},<{hi} .*installed peft 0\.13\.0"):
        sp.check_peft_version("0.13.0")
    with pytest.raises(ImportError, match=rf"installed peft {hi}\.0\. Install a supported release"):
        sp.check_peft_version(f"{hi}.0")


def test_import_or_skip_says_why_and_fails_in_ci(monkeypatch):
    """A missing or broken import is a skip with the reason outside CI, a failure in CI (CI=true)."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception,
                       match=r"no_such_module_x cannot be imported \(ModuleNotFoundError: No module named"):
        import_or_skip("no_such_module_x")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true: the PEFT interoperability tests must run"):
        import_or_skip("no_such_module_x")
    assert import_or_skip("peft") is peft
