"""A test dependency that CI must have: imported, or a skip that says why outside CI and a failure in CI (env
CI=true)."""
import importlib
import os

import pytest


def import_or_skip(name: str, tests: str, hint: str):
    """`name` imported; otherwise a skip that names the import error and `hint` (how to install it), or, in CI (env
    CI=true), a failure: CI must run `tests`, not skip them. A skip at module level when called at import time."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # ImportError, or a broken dependency (e.g. PyPI's CUDA torchvision beside a CPU torch)
        why = f"{name} cannot be imported ({type(e).__name__}: {e}). {hint}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why}. CI=true: {tests} must run, not be skipped", pytrace=False)
        pytest.skip(why, allow_module_level=True)
