"""saharank's adapters on MONAI's networks (MONAI is a test dependency): with `layer_types='all'` every method
adapts every conv and transposed conv of MONAI's UNet (3-D), BasicUNet (2-D) and SegResNet (3-D, with its
default non-trainable up-sampling and with transposed-conv up-sampling); the adapted network is the base network
at initialisation, merges exactly (float64), round-trips through save_adapters/load_adapters, and trains only
its adapters."""
import copy

import pytest
import torch
from torch import nn

from required import import_or_skip  # noqa: E402  (pytest puts tests/ on sys.path)

monai_nets = import_or_skip("monai.networks.nets", "the MONAI adapter tests",
                            "MONAI is in the baselines extra (pip install -e '.[dev]')")

from saharank.adapters import (METHOD_KEYS, adapter_layers, add_adapters, load_adapters, merge_adapters,  # noqa: E402
                               parameter_table, save_adapters, trainable_parameters, unmerge_adapters)

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)

NETS = {  # name: (builder, input shape, number of convs + transposed convs)
    'UNet3d': (lambda: monai_nets.UNet(spatial_dims=3, in_channels=1, out_channels=2,
                                       channels=(4, 8, 16), strides=(2, 2),
                                       num_res_units=1), (1, 1, 8, 8, 8), 10),
    'BasicUNet2d': (lambda: monai_nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2,
                                                 features=(4, 4, 4, 4, 8, 4)),
                    (1, 1, 32, 32), 23),
    'SegResNet3d': (lambda: monai_nets.SegResNet(spatial_dims=3, init_filters=4, in_channels=1, out_channels=2,
                                                 blocks_down=(1, 1), blocks_up=(1,),
                                                 norm=('group', {'num_groups': 2})), (1, 1, 8, 8, 8), 10),
    'SegResNet3d-deconv': (lambda: monai_nets.SegResNet(spatial_dims=3, init_filters=4, in_channels=1, out_channels=2,
                                                        blocks_down=(1, 1), blocks_up=(1,),
                                                        norm=('group', {'num_groups': 2}),
                                                        upsample_mode='deconv'), (1, 1, 8, 8, 8), 11),
}


def build(name, dtype=torch.float32, seed=0):
    make, shape, _ = NETS[name]
    torch.manual_seed(seed)
    net = make().to(dtype).eval()
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(shape, generator=g, dtype=dtype)


def perturb(net, std=0.05, seed=2):
    "Give every adapter parameter a random non-zero value (so the update is not zero)."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in adapter_layers(net).values():
            for p in layer.adapter_parameters(): p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype))


def conv_names(net):
    return [n for n, m in net.named_modules() if isinstance(m, CONVS)]


@pytest.mark.parametrize("name", list(NETS))
def test_expected_layer_counts(name):
    net, _ = build(name)
    assert len(conv_names(net)) == NETS[name][2]
    transposed = sum(isinstance(m, (nn.ConvTranspose2d, nn.ConvTranspose3d)) for m in net.modules())
    assert transposed == {'UNet3d': 2, 'BasicUNet2d': 4, 'SegResNet3d': 0, 'SegResNet3d-deconv': 1}[name]


@pytest.mark.parametrize("method", METHOD_KEYS)
@pytest.mark.parametrize("name", list(NETS))
def test_adapts_every_conv_identity_and_exact_merge(name, method):
    base, x = build(name, torch.float64)
    net = add_adapters(copy.deepcopy(base), method, 2, layer_types='all')
    assert list(adapter_layers(net)) == conv_names(base)  # every conv and transposed conv, nothing else
    assert trainable_parameters(net) == parameter_table(base, ranks=(2,), methods=[method],
                                                        layer_types='all').loc[2, method]
    with torch.no_grad():
        assert torch.equal(net(x), base(x))                               # identity at initialisation
        perturb(net)
        out = net(x)
        assert not torch.allclose(out, base(x))
        merge_adapters(net, unload=False)                                 # in place: one plain conv per layer
        torch.testing.assert_close(net(x), out, rtol=0, atol=1e-10)
        unmerge_adapters(net)
        assert torch.equal(net(x), out)
        plain = merge_adapters(copy.deepcopy(net))
        assert type(plain) is type(base) and adapter_layers(plain) == {}
        assert [type(m) for m in plain.modules()] == [type(m) for m in base.modules()]
        torch.testing.assert_close(plain(x), out, rtol=0, atol=1e-10)


@pytest.mark.parametrize("method", METHOD_KEYS)
@pytest.mark.parametrize("name", list(NETS))
def test_save_load_round_trip(name, method, tmp_path):
    base, x = build(name)
    net = add_adapters(copy.deepcopy(base), method, 3, layer_types='all')
    perturb(net)
    save_adapters(net, tmp_path)
    fresh, _ = build(name)                                                # the same base weights, built anew
    loaded = load_adapters(fresh, tmp_path).eval()
    assert list(adapter_layers(loaded)) == conv_names(base)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))


@pytest.mark.parametrize("method", METHOD_KEYS)
@pytest.mark.parametrize("name", list(NETS))
def test_trains_only_adapters(name, method):
    base, x = build(name)
    net = add_adapters(copy.deepcopy(base), method, 2, layer_types='all').train()
    target = torch.randn(net(x).shape, generator=torch.Generator().manual_seed(3))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(6):
        opt.zero_grad()
        loss = (net(x) - target).square().mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    adapter_keys = {f'{n}.{k}' for n, l in adapter_layers(net).items()
                    for k, _ in l.named_parameters() if not k.startswith('base.')}
    for k, v in net.state_dict().items():
        if k in adapter_keys: assert not torch.equal(v, before[k]), f"adapter {k} did not train"
        elif not k.endswith(('running_mean', 'running_var', 'num_batches_tracked')):
            assert torch.equal(v, before[k]), f"frozen {k} changed"


def test_default_layer_types_leave_transposed_convs_out():
    base, _ = build('UNet3d')
    assert len(adapter_layers(add_adapters(copy.deepcopy(base), 'cp-lora', 2))) == 8  # the paper's layer set: 8 of 10
    assert len(adapter_layers(add_adapters(copy.deepcopy(base), 'cp-lora', 2, layer_types='all'))) == 10
