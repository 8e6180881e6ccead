"""The package's modules form layers with no arrow back up: each module imports only modules of lower layers
(module-level and function-level imports alike), and the import graph has no cycle."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "saharank"

# lowest first; a module may import only modules of a strictly lower layer
LAYERS = [
    ("core", "_vendor"),                                 # foundation: atomic I/O, fingerprints, vocabulary,
                                                         # provenance, executor, run layout; vendored third-party
                                                         # networks (saharank/_vendor: imports nothing of ours)
    ("settings", "data"),                                # typed settings; NIfTI I/O, HU, calibration, the cohort
                                                         # layout
    ("dicom", "models", "adapters", "losses", "baselines", "cranium"),  # DICOM reader; networks; conv adapters; losses
                                                         # and augmentation; LiteMedSAM, SAMIHS; the real head CT
                                                         # (fetched, checked, cached)
    ("cohort", "datasets", "training", "peft"),          # cohorts; public datasets; training loop; PEFT bridge
    ("evaluation",),                                     # metrics, per-patient evaluation, tables, best rank
    ("predict", "viewer", "report"),                     # prediction on scans; mask viewer; the paper's tables,
                                                         # figures, report notebooks
    ("robustness",),                                     # perturbed scans (calibration, noise, blur, pixel size,
                                                         # thickness) and their report
    ("bench",),                                          # the seeds' systems beside the Unets (issue #21)
    ("grid",),                                           # the runs: pre-training, fine-tuning, their seeds, keys, ids
                                                         # and fold models
    ("deploy",),                                         # deployable models of the configurations the tables select
    ("experiment",),                                     # reproduce: the stages in order, timed; results and
                                                         # provenance
    ("cli",),                                            # the thin command line
    ("cluster", "__main__"),                             # SLURM job arrays over the CLI; python -m saharank
]
LAYER = {m: i for i, names in enumerate(LAYERS) for m in names}


def _package(path: Path) -> tuple[str, ...]:
    """The package `path` lies in, e.g. ('saharank', '_vendor', 'litemedsam'); a file outside saharank/ counts as in
    'saharank'."""
    try: return ("saharank", *path.resolve().parent.relative_to(PKG).parts)
    except ValueError: return ("saharank",)


def imports_of(path: Path, package: tuple[str, ...] | None = None) -> set[str]:
    """The saharank modules imported anywhere in `path` (absolute imports, and relative ones of any depth, resolved
    against the package `path` lies in, or `package`): the top-level module of each, e.g. '_vendor' or 'core'."""
    pkg, out = package or _package(path), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:                              # from .x / ..x / ...x: up level - 1 packages from pkg
                if node.level > len(pkg): continue      # beyond the top: not ours (Python refuses it anyway)
                full = [*pkg[:len(pkg) - node.level + 1], *(node.module.split(".") if node.module else [])]
            else:
                full = (node.module or "").split(".")
            if full[0] != "saharank": continue
            if len(full) > 1: out.add(full[1])
            else:  # from saharank import x
                out |= {a.name for a in node.names if (PKG / f"{a.name}.py").exists() or (PKG / a.name).is_dir()}
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
        stack.pop()
        seen.add(m)
    for m in MODULES: visit(m)


def test_the_checker_sees_an_upward_import(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("import os\ndef f():\n    from saharank.experiment import reproduce\n"
                 "    from .core import atomic_path\n")
    assert imports_of(f) == {"experiment", "core"}


def test_the_checker_resolves_relative_imports_of_any_depth(tmp_path):
    f = tmp_path / "x.py"
    f.write_text("from ...core import atomic_path\nfrom ..other import y\nfrom . import tiny_vit\n"
                 "from .tiny_vit import z\n"
                 "from .... import beyond\n")
    assert imports_of(f, package=("saharank", "_vendor", "litemedsam")) == {"core", "_vendor"}
    # one package up: ..other is saharank.other; ...core is above saharank
    assert imports_of(f, package=("saharank", "_vendor")) == {"other", "_vendor"}
    vendored = next((PKG / "_vendor").rglob("*.py"))
    assert _package(vendored)[:2] == ("saharank", "_vendor")


def test_vendored_code_imports_nothing_of_ours():
    for f in (PKG / "_vendor").rglob("*.py"):
        assert not any(m != "_vendor" for m in imports_of(f) if (PKG / f"{m}.py").exists()), f
