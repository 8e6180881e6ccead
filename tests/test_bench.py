"""The benchmark scripts run (the GPU sessions depend on them: tools/device/engine_check.sh) and print what they promise."""
import subprocess, sys
from pathlib import Path

from saharank.adapters import METHOD_REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_bench_adapters_quick_times_every_method_with_the_engine_step():
    out = run("bench/bench_adapters.py", "--quick", "--models", "unet", "--batch", "2,3", "--copies", "3", "--warmup", "2")
    for batch in (2, 3):
        assert f"## Unet, batch {batch} x 3 contrast copies, step eager" in out
    for m in METHOD_REGISTRY.values():
        assert out.count(f"| {m.display} R=2 |") == 2, m.display


def test_full_cost_projects_the_smoke_profile():
    out = run("bench/full_cost.py", "--profile", "smoke", "--device", "cpu", "--ranks", "64", "--slices", "16")
    assert "projected training time" in out and "seeds 1" in out and "deployable models" in out
    for m in METHOD_REGISTRY:
        assert f"{m}:64:" in out
