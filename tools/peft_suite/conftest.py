"""Runs PEFT's own `tests/test_custom_models.py` (from the sdist of the pinned PEFT release) on its conv models x
`LoraConfig` cases, either through saharank's bridge or with PEFT's own LoRA (the control).

Copied next to PEFT's tests by `.ci/peft-suite`. `SAHARANK_PEFT_SUITE=bridge`: every `LoraConfig` built in the
process (the test's own, and those PEFT builds when it loads a saved adapter) is registered with
`saharank.peft.register`, method convDoRA for `use_dora=True` and convLoRA otherwise (the two methods with PEFT's
factorisation); the conv layers then are `SaharankLoraLayer`s, the Linear `lin0` keeps PEFT's LoRA.
`SAHARANK_PEFT_SUITE=peft`: nothing is changed (PEFT's LoRA everywhere).

Selection (`pytest_collection_modifyitems`): the tests parametrized with TEST_CASES whose model is one of the conv
models below and whose config class is `LoraConfig`, without `lora_bias` (saharank's adapters have no bias term:
refused by design, see nbs/14_peft.ipynb)."""
import os
import sys
import types

import pytest

MODE = os.environ.get("SAHARANK_PEFT_SUITE", "peft")
CONV_MODELS = {"Conv1d", "Conv2d", "Conv2dGroups", "Conv2dGroups2", "Conv3d"}

# testing_common / testing_utils import diffusers and datasets at module level, for tests outside this selection;
# the selected tests never use them. Stand-ins keep the suite's dependencies to torch, transformers and PEFT.
for _name, _attrs in (("diffusers", ("StableDiffusionPipeline",)), ("datasets", ("load_dataset",))):
    try:
        __import__(_name)
    except ImportError:
        _mod = types.ModuleType(_name)
        for _a in _attrs:
            setattr(_mod, _a, None)
        sys.modules[_name] = _mod

if MODE not in ("bridge", "peft"):
    raise RuntimeError(f"SAHARANK_PEFT_SUITE must be 'bridge' or 'peft', got {MODE!r}")

if MODE == "bridge":
    from peft import LoraConfig
    from saharank import peft as sp

    _post_init = LoraConfig.__post_init__

    def _registered_post_init(self, *args, **kwargs):
        _post_init(self, *args, **kwargs)
        sp.register(self, "convdora" if self.use_dora else "convlora")

    LoraConfig.__post_init__ = _registered_post_init

    _BUILT = {"n": 0}
    _layer_init = sp.SaharankLoraLayer.__init__

    def _counting_init(self, *args, **kwargs):
        _BUILT["n"] += 1
        _layer_init(self, *args, **kwargs)

    sp.SaharankLoraLayer.__init__ = _counting_init


def _selected(item) -> bool:
    cs = getattr(item, "callspec", None)
    if cs is None or "model_id" not in cs.params or "config_cls" not in cs.params:
        return False
    from peft import LoraConfig
    kwargs = cs.params.get("config_kwargs") or {}
    return (cs.params["model_id"] in CONV_MODELS and cs.params["config_cls"] is LoraConfig
            and not kwargs.get("lora_bias"))


def pytest_collection_modifyitems(config, items):
    ours = [i for i in items if i.path.name == "test_custom_models.py"]     # other files' tests are left alone
    keep = [i for i in items if i not in ours or _selected(i)]
    drop = [i for i in ours if not _selected(i)]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_report_header(config):
    return f"saharank PEFT suite: mode={MODE} ({'saharank.peft bridge' if MODE == 'bridge' else 'PEFT LoRA, control'})"


_LAYERS_BUILT = {}


@pytest.fixture(autouse=True)
def _count_bridge_layers(request):
    """Bridge mode: how many SaharankLoraLayers each test built (written to $SAHARANK_PEFT_SUITE_COUNTS as JSON), so
    that the comparison can tell a pass through the bridge from a vacuous one."""
    if MODE != "bridge":
        yield
        return
    before = _BUILT["n"]
    yield
    _LAYERS_BUILT[request.node.nodeid] = _BUILT["n"] - before


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("SAHARANK_PEFT_SUITE_COUNTS")
    if MODE == "bridge" and path:
        import json
        with open(path, "w") as f:
            json.dump(_LAYERS_BUILT, f, indent=0)
