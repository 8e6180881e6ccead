"""The package's modules form layers with no arrow back up: each module imports only modules of lower layers
(module-level and function-level imports alike), and the import graph has no cycle."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "saharank"

# lowest first; a module may import only modules of a strictly lower layer
LAYERS = [
    ("core", "_vendor"),                                 # foundation: atomic I/O, fingerprints, vocabulary, provenance, executor, run layout;
                                                         # vendored third-party networks (saharank/_vendor: imports nothing of ours)
    ("settings", "data"),                                # typed settings; NIfTI I/O, HU, the real CT
    ("dicom", "models", "adapters", "losses", "baselines"),  # DICOM reader; networks; conv adapters; losses and augmentation; LiteMedSAM, SAMIHS
    ("cohort", "datasets", "training", "peft"),          # cohorts; public datasets; training loop; PEFT bridge
    ("evaluation",),                                     # metrics, per-patient evaluation, tables, best rank
    ("predict", "viewer", "report"),                     # prediction on scans; mask viewer; the paper's tables and figures
    ("robustness",),                                     # perturbed scans (calibration, noise, blur, pixel size, thickness)
    ("bench",),                                          # the seeds' systems beside the Unets (issue #21)
    ("experiment",),                                     # run layout use, the grid, pre-train / fine-tune / deploy / reproduce
    ("cli",),                                            # the thin command line
    ("cluster", "__main__"),                             # SLURM job arrays over the CLI; python -m saharank
]
LAYER = {m: i for i, names in enumerate(LAYERS) for m in names}


def imports_of(path: Path) -> set[str]:
    "The saharank modules imported anywhere in `path` (relative or absolute imports)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: full = mod
            elif mod == "saharank" or mod.startswith("saharank."): full = mod[len("saharank."):] if "." in mod else ""
            else: continue
            if full: out.add(full.split(".")[0])
            else: out |= {a.name for a in node.names if (PKG / f"{a.name}.py").exists()}   # from saharank import x
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("saharank."): out.add(a.name.split(".")[1])
    return out


MODULES = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "_modidx"))


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(LAYER)) == [], "give the new module a layer in tests/test_layers.py"


@pytest.mark.parametrize("module", MODULES)
def test_no_upward_import(module):
    bad = sorted(m for m in imports_of(PKG / f"{module}.py") if m != module and LAYER.get(m, 99) >= LAYER[module])
    assert bad == [], f"saharank.{module} (layer {LAYER[module]}) imports {bad} from its own or a higher layer"


def test_no_cycle():
    graph = {m: imports_of(PKG / f"{m}.py") - {m} for m in MODULES}
    seen, stack = set(), []
    def visit(m):
        if m in stack: raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
        if m in seen: return
        stack.append(m)
        for n in sorted(graph.get(m, ())): visit(n)
        stack.pop(); seen.add(m)
    for m in MODULES: visit(m)


def test_the_checker_sees_an_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import os\ndef f():\n    from saharank.experiment import reproduce\n    from .core import atomic_path\n")
    assert imports_of(f) == {"experiment", "core"}


def test_vendored_code_imports_nothing_of_ours():
    for f in (PKG / "_vendor").rglob("*.py"):
        assert not any(m != "_vendor" for m in imports_of(f) if (PKG / f"{m}.py").exists()), f
