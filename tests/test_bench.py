"""The benchmark scripts run (the GPU sessions depend on them: tools/device/engine_check.sh) and print what they
promise."""
import json, subprocess, sys
from pathlib import Path

from saharank.adapters import METHOD_REGISTRY

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_bench_adapters_quick_times_every_method_with_the_engine_step():
    out = run("bench/bench_adapters.py", "--quick", "--models", "unet", "--batch", "2,3",
              "--copies", "3", "--warmup", "2")
    for batch in (2, 3):
        assert f"## Unet, batch {batch} x 3 contrast copies, step eager" in out
    for m in METHOD_REGISTRY.values():
        assert out.count(f"| {m.display} R=2 |") == 2, m.display


def test_full_cost_projects_the_smoke_profile():
    out = run("bench/full_cost.py", "--profile", "smoke", "--device", "cpu", "--ranks", "64", "--slices", "16")
    assert "projected training time" in out and "replicates 1" in out and "deployable models" in out
    for m in METHOD_REGISTRY:
        assert f"{m}:64:" in out


def test_smoke_time_reads_a_run_and_profiles_one_of_its_runs(tmp_path):
    """bench/smoke_time.py --reuse on a finished (tiny) reproduction: every stage's seconds from its provenance and
    calls.json, and the profile of one fine-tuning run trained again in a fresh process, whose parts add up."""
    import json, re
    from saharank.cohort import phantom_anatomy
    from saharank.experiment import reproduce
    from test_pipeline import TINY  # noqa: E402  (pytest puts tests/ on sys.path)
    (tmp_path / "tiny.ini").write_text(TINY)
    out = tmp_path / "run"
    reproduce("tiny", out, settings=tmp_path / "tiny.ini", device="cpu", progress=False, verbose=False,
              anatomy=phantom_anatomy(),
              report=False, deploy=False, robustness=False, jobs=1)
    text = run("bench/smoke_time.py", "--out", str(out), "--reuse", "--run", "LoRA-C2-fold1")
    stages = json.loads((out / "calls.json").read_text())[-1]["stages"]
    for name in ("cohorts", "pretrain", "finetune", "results"):
        shown = float(re.search(rf"^{name}\s+([\d.]+)", text, re.M).group(1))
        assert abs(shown - stages[f"{name}_s"]) <= 0.05, (name, shown, stages)
    assert "one fine-tuning run, LoRA-C2-fold1, in a fresh process, 1 thread(s)" in text
    part = lambda label: float(re.search(rf"^{re.escape(label)}\s+([\d.]+)", text, re.M).group(1))
    whole, training = part("the whole run"), part("training (train_model)")
    assert 0 < training <= whole and part("  backward") + part("  forward and loss") <= training
    assert abs(training + part("evaluation (evaluate_patients)") + part("load the training slices")
               + part("save the trained weights")
               + part("the rest of the run (model, replicates, ...)") - whole) <= 0.05


def test_augmentation_profiles_differ_from_smoke_only_in_the_setting(tmp_path):
    """bench/noise_augmentation.py's settings: [smoke-noiseN] is [smoke] with intensity_noise_hu = N,
    [smoke-bonerise15] [smoke] with intensity_bone_rise_hu = 15, [smoke-empty0.5] with empty_slice_fraction = 0.5,
    nothing else; with another cohort seed, [smoke-empty0.5-seed1] with seed = 1 too."""
    from saharank.settings import load_settings
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import noise_augmentation as na
    finally:
        sys.path.remove(str(ROOT / "bench"))
    smoke = load_settings("smoke").as_dict()
    for setting, tag, values in (("intensity_noise_hu", "noise", (8.0, 16.0)),
                                 ("intensity_bone_rise_hu", "bonerise", (15.0,)),
                                 ("empty_slice_fraction", "empty", (0.5,)),
                                 ("test_time_flip", "flip", (1.0,))):
        ini = na.settings_with_values(setting, values, tmp_path / f"{tag}.ini", seeds=(None, 1))
        for n in values:
            for seed, suffix in ((smoke["seed"], ""), (1, "-seed1")):
                s = load_settings(f"smoke-{tag}{n:g}{suffix}", ini).as_dict()
                assert s.pop(setting) == n and s.pop("profile") == f"smoke-{tag}{n:g}{suffix}"
                assert s.pop("seed") == seed
                assert s == {k: v for k, v in smoke.items() if k not in (setting, "profile", "seed")}
    long = load_settings("smoke-long").as_dict()          # --base smoke-long: [smoke-long-noise16(-seed1)]
    ini = na.settings_with_values("intensity_noise_hu", (16.0,), tmp_path / "long.ini", seeds=(None, 1),
                                  base="smoke-long")
    for seed, suffix in ((long["seed"], ""), (1, "-seed1")):
        s = load_settings(f"smoke-long-noise16{suffix}", ini).as_dict()
        assert s.pop("intensity_noise_hu") == 16.0 and s.pop("seed") == seed and s.pop("pretrain_epochs") == 18
        assert s == {k: v for k, v in long.items() if k not in ("intensity_noise_hu", "profile", "seed",
                                                                  "pretrain_epochs")} | {"profile": s["profile"]}
    try:                                                  # a setting [smoke] does not have: named, nothing written
        na.settings_with_variants({"smoke-x": {"nosuch": 1}}, tmp_path / "nosuch.ini")
        raise AssertionError("an unknown setting passed")
    except SystemExit as e:
        assert "has no setting 'nosuch'" in str(e) and not (tmp_path / "nosuch.ini").exists()


def test_resolution_reads_the_held_out_rows_of_a_run(tmp_path):
    """bench/resolution.py --generalization: each row of report/generalization.csv gives Dice in / out and the volume
    error out in %, under its model's role (per_patient.csv's experiment); the clean-head mL only where a head (not
    a pattern) was held out; the robustness columns only from the cross-validation rows of the listed perturbations."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import resolution
    finally:
        sys.path.remove(str(ROOT / "bench"))
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "generalization.csv").write_text(
        "model,held_out,patients,dice_in,dice_out,volume_error_in,volume_error_out,clean_network_ml,"
        "clean_predicted_ml,goals\n"
        "All,ct_head,15,0.6284,0.4977,0.17,0.2983,16.47,12.95,x\n"
        "LoRA-C64,pockets,15,0.532,0.464,0.358,0.459,,,y\n")
    (tmp_path / "per_patient.csv").write_text("id,model,experiment\n1,All,strategy\n2,LoRA-C64,adapter\n"
                                              "1,LoRA-C64,adapter\n")
    row = resolution.held_out(tmp_path)
    assert row == {"best strategy without ct_head: model, Dice in / out": "All, 0.628 / 0.498",
                   "best strategy without ct_head: volume error out %": 29.8,
                   "best strategy without ct_head: clean head mL (network / post-processed)": "16.47 / 12.95",
                   "best adapter without pockets: model, Dice in / out": "LoRA-C64, 0.532 / 0.464",
                   "best adapter without pockets: volume error out %": 45.9}
    (tmp_path / "report" / "robustness.csv").write_text(
        "evaluation,model,perturbation,patients,dice,median_abs_volume_error,median_abs_volume_change\n"
        "cross-validation test folds,multiview-All,noise 15 HU,30,0.4,0.7,0.7079\n"
        "cross-validation test folds,unet-DoRA-C64,pixel 1.5x coarser,30,0.7,0.15,0.1323\n"
        "cross-validation test folds,unet-DoRA-C64,HU -8,30,0.7,0.15,0.0\n"
        "\"deployable, in-sample\",sah-unet-DoRA-C64,noise 15 HU,30,0.4,0.7,0.9\n")
    assert resolution.robustness(tmp_path) == {
        "best strategy, noise 15 HU: median volume change %": 70.8,
        "best adapter, pixel 1.5x coarser: median volume change %": 13.2}


def test_held_out_threshold_rules():
    """bench/held_out_threshold.py: apply_rule keeps voxels at or above the threshold, and with a seed whole components
    only when one voxel reaches it (the component is kept whole, not trimmed to the seed). (Its flip test-time
    augmentation is the package's, tested in nbs/05_training.ipynb.)"""
    import numpy as np
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import held_out_threshold as hot
    finally:
        sys.path.remove(str(ROOT / "bench"))
    prob = np.zeros((6, 6, 3), np.float32)
    prob[0:2, 0:2, 0] = [[0.6, 0.7], [0.8, 0.99]]     # a component with a confident voxel
    prob[4:6, 4:6, 2] = 0.8                           # one without
    mask = prob >= 0.5
    np.testing.assert_array_equal(hot.apply_rule(mask, prob, 0.5, 0.), mask)
    np.testing.assert_array_equal(hot.apply_rule(mask, prob, 0.75, 0.), prob >= 0.75)
    kept = hot.apply_rule(mask, prob, 0.5, 0.95)
    assert kept[0:2, 0:2, 0].all() and not kept[4:6, 4:6, 2].any() and kept.sum() == 4
    assert not hot.apply_rule(mask, prob, 0.5, 0.999).any()


def test_flatten_heads_runs_smoke_with_the_setting_forced_and_restores_it(monkeypatch):
    """bench/flatten_heads.py's run_smoke: the reproduction it calls reads `flatten_bone_profile` as forced (off for
    the baseline, on for the flattened run) whatever the profile says, with the rest of the profile, and the settings
    loader is the package's again afterwards."""
    import saharank.cli
    import saharank.experiment as experiment
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import flatten_heads as fh
    finally:
        sys.path.remove(str(ROOT / "bench"))
    seen, load = [], experiment.load_settings
    monkeypatch.setattr(saharank.cli, "main", lambda argv: seen.append(
        (argv[-2], experiment.load_settings("smoke", None).flatten_bone_profile,
         experiment.load_settings("smoke", None).image_size)) or 0)
    fh.run_smoke(Path("runs/a"), False)
    fh.run_smoke(Path("runs/b"), True)
    size = load("smoke", None).image_size
    assert seen == [("runs/a", False, size), ("runs/b", True, size)]
    assert experiment.load_settings is load


def test_clean_head_false_positives_describes_where_the_calls_lie():
    """bench/clean_head_false_positives.py's `describe`: mL from the voxel size, shares of the calls per tissue label
    that sum to 100 %, distances from bone, and the calibrated HU of the calls, on a hand-made head."""
    import types
    import numpy as np
    from saharank.cohort import LABELS
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import clean_head_false_positives as cfp
    finally:
        sys.path.remove(str(ROOT / "bench"))
    labels = np.full((20, 20, 6), LABELS["parenchyma"], np.uint8)
    labels[0, :, :] = LABELS["bone"]                                  # a bone wall at x = 0
    labels[10:12, 10:12, :] = LABELS["csf"]
    hu = np.where(labels == LABELS["bone"], 1000.0, 30.0).astype(np.float32)
    ct = types.SimpleNamespace(hu=hu, labels=labels, affine=np.diag([2.0, 2.0, 250.0, 1.0]))   # 1 mL voxels
    pred = np.zeros(hu.shape, np.uint8)
    pred[1, 5, 2] = 1                                                 # 2 mm from bone, parenchyma
    pred[10, 10, 2] = 1                                               # 20 mm from bone, CSF
    prob = pred.astype(np.float32)
    prob[15, 15, 0] = 0.9                                             # the network alone: a third voxel
    row = cfp.describe(pred, prob, ct, 0.5, None)
    assert (row["post-processed mL"], row["network mL"]) == (2.0, 3.0)
    assert row["post-processed: % in parenchyma"] == 50.0 and row["post-processed: % in csf"] == 50.0
    assert sum(row[f"network: % in {k}"] for k in LABELS) == 100.0
    assert (row["post-processed: % 0-5 mm from bone"], row["post-processed: % 15-inf mm from bone"]) == (50.0, 50.0)
    assert row["network: calibrated HU median (IQR)"] == "30 (30-30)"
    assert (row["post-processed: % in the lowest third"], row["network: % in the lowest third"]) == (0.0, 33.3)


def _bench_module(name):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_native_sah_grid_is_the_heads_own_voxels():
    """bench/native_sah.py's `native_grid`: the head's pixel size and slice spacing, square, covering its
    intracranial space (so the patients it makes are at the scan's own resolution)."""
    import numpy as np
    from saharank.cohort import INTRACRANIAL_LABELS, phantom_anatomy
    ph = phantom_anatomy()
    g = _bench_module("native_sah").native_grid(ph)
    sp = np.linalg.norm(ph.affine[:3, :3], axis=0)
    assert np.allclose(g.spacing, (sp[0], sp[0], sp[2])) and g.shape[0] == g.shape[1] == max(ph.hu.shape[:2])
    top = g.z0_mm + (g.n_slices - 1) * g.thickness_mm
    ks = np.nonzero(np.isin(ph.labels, INTRACRANIAL_LABELS).any((0, 1)))[0]
    zs = [(ph.affine @ [0, 0, k, 1])[2] for k in (ks[0], ks[-1])]
    assert g.z0_mm <= min(zs) and top >= max(zs), (g, zs)


def test_reading_of_a_pointwise_model_does_not_depend_on_canvas_or_slabs():
    """bench/reading.py's `clean_ml`: a model that looks at each pixel alone (blood at and above the window's top)
    calls the same mL whether the scan is padded, put on a canvas or read as slabs of its own 5 mm thickness; the mL
    come from the voxel size."""
    import dataclasses
    import numpy as np
    import torch
    from saharank.cohort import LABELS, phantom_anatomy

    class Bright(torch.nn.Module):
        def forward(self, x): return torch.cat([(x < 1).float(), (x >= 1).float()], 1) * 20
    ph = phantom_anatomy()
    hu = ph.hu.astype(np.float32).copy()
    hu[(ph.labels == LABELS["parenchyma"]) & (np.indices(hu.shape)[2] == hu.shape[2] // 2)] = 150.
    ct = dataclasses.replace(ph, hu=hu)
    sp = np.linalg.norm(ph.affine[:3, :3], axis=0)
    meta = dict(window=(40, 120), pixel_mm=float(sp[0]), canvas_px=int(max(hu.shape[:2])) + 8,
                slab_mm=float(sp[2]), postprocessing=None)
    got = _bench_module("reading").clean_ml(Bright(), meta, ct, 0.5)
    expect = round(float((hu >= 100).sum() * np.prod(sp) / 1000), 1)
    assert set(got.values()) == {(expect, expect)} and expect > 0, (got, expect)


def test_pixel_size_scans_a_patient_by_pixel_area():
    """bench/pixel_size.py's `scanned_at`: 1 mm pixels read at 2.5 mm keep a uniform region's HU and the image's mean,
    the annotation's area within a pixel's rim, the grid's corner (the new affine maps pixel -0.5 to the same world
    point), and 2.5 mm pixels."""
    import numpy as np
    from saharank.data import voxel_spacing
    ps = _bench_module("pixel_size")
    hu = np.full((100, 100, 3), 30., np.float32)
    mask = np.zeros(hu.shape, np.uint8)
    mask[30:70, 40:60] = 1
    hu[mask > 0] = 65.
    aff = np.diag([1., 1., 5., 1.])
    aff[:3, 3] = (-50., -50., 0.)
    h, m, a = ps.scanned_at(hu, mask, aff, 2.5)
    assert h.shape == (40, 40, 3) and np.allclose(voxel_spacing(a), (2.5, 2.5, 5.))
    assert np.allclose(a @ [-0.5, -0.5, 0, 1], aff @ [-0.5, -0.5, 0, 1])
    assert abs(h.mean() - hu.mean()) < 0.5 and np.allclose(h[:8, :8], 30., atol=1e-3)
    assert abs(m.sum() * 2.5 ** 2 - mask.sum()) <= 2 * (40 + 20) * 2.5 * 3, (m.sum() * 6.25, mask.sum())


def test_noise_bench_puts_the_noise_where_it_says():
    """bench/noise.py's `noisy_scans`: the scan at its own voxels and at the models' 3.75 mm pixel (`scanned_at`), each
    without noise (unchanged) and with each level's noise on those voxels (same annotation and affine, noise SD as
    named), seeded."""
    import numpy as np
    ns = _bench_module("noise")
    hu = np.full((120, 120, 4), 30., np.float32)
    mask = np.zeros(hu.shape, np.uint8)
    mask[40:80, 50:70] = 1
    aff = np.diag([1., 1., 5., 1.])
    got = ns.noisy_scans(hu, mask, aff, seed=3)
    assert set(got) == ({("scan voxels", n) for n in ns.SCAN_NOISE_HU}
                        | {("model pixel", n) for n in ns.PIXEL_NOISE_HU})
    small = ns.scanned_at(hu, mask, aff, 3.75)
    for where, ref in (("scan voxels", (hu, mask, aff)), ("model pixel", small)):
        clean = got[(where, 0.)]
        assert np.array_equal(clean[0], ref[0]) and np.array_equal(clean[1], ref[1]) and np.allclose(clean[2], ref[2])
        for (w, n), noisy in got.items():
            if w != where or n == 0: continue
            assert np.array_equal(noisy[1], clean[1]) and np.allclose(noisy[2], clean[2])
            assert abs(float((noisy[0] - clean[0]).std()) / n - 1) < 0.03, (where, n)
    assert np.array_equal(ns.noisy_scans(hu, mask, aff, seed=3)[("model pixel", 15.)][0], got[("model pixel", 15.)][0])


def test_noise_bench_reads_a_scan_as_the_network_does():
    """bench/noise.py's `read_slices`: a scan on the models' own grid (3.75 mm pixels, 5 mm slices) is read unchanged;
    white noise on 1 mm voxels is averaged over 5 slices and about 14 pixels: its SD falls more than 5-fold."""
    import numpy as np
    ns = _bench_module("noise")
    meta = dict(pixel_mm=3.75, slab_mm=5.0)
    x = np.random.default_rng(0).normal(30, 10, (32, 32, 6)).astype(np.float32)
    assert np.array_equal(ns.read_slices(x, np.diag([3.75, 3.75, 5., 1.]), meta), x)
    fine = np.random.default_rng(1).normal(0, 15, (120, 120, 30)).astype(np.float32)
    got = ns.read_slices(fine, np.diag([1., 1., 1., 1.]), meta)
    assert got.shape == (32, 32, 30) and float(got[4:-4, 4:-4, 3:-3].std()) < 15 / 5, float(got.std())


def test_slice_thickness_reconstructs_contiguous_thick_slices():
    """bench/slice_thickness.py's `thick_slices`: 1 mm slices as 5 mm ones are the means of each 5 thin slices, centred
    where those are (the affine), contiguous; blood 10 slices thick keeps its volume; slices as thick as they are come
    back unchanged; thinner ones are refused."""
    import numpy as np
    import pytest
    st = _bench_module("slice_thickness")
    rng = np.random.default_rng(0)
    hu = rng.normal(30, 5, (6, 5, 40)).astype(np.float32)
    mask = np.zeros(hu.shape, np.uint8)
    mask[:, :, 10:20] = 1
    aff = np.diag([3.75, 3.75, 1., 1.])
    aff[2, 3] = -7.
    h, m, a = st.thick_slices(hu, mask, aff, 5.)
    assert h.shape == (6, 5, 8) and np.allclose(a[2, 2], 5.)
    assert np.allclose(h[:, :, 3], hu[:, :, 15:20].mean(axis=2), atol=1e-4)
    assert np.allclose(a @ [0, 0, 3, 1], [0, 0, (aff @ [0, 0, 17, 1])[2], 1])          # centre of thin slices 15-19
    assert m.sum() * 5 == mask.sum()
    same = st.thick_slices(hu, mask, aff, 1.)
    assert np.array_equal(same[0], hu) and np.array_equal(same[1], mask) and np.allclose(same[2], aff)
    with pytest.raises(ValueError, match="thinner"):
        st.thick_slices(hu, mask, aff, 0.5)


def test_blur_bench_blurs_in_plane_and_keeps_the_annotation():
    """bench/blur.py's `blurred_scans`: the scan itself, a Gaussian of each SD in pixels in-plane only (a slice of
    white noise keeps the variance the kernel's squared weights give; slices stay apart), the annotation unchanged;
    and the report's 1.5x coarser pixels (a grid 2/3 the size, pixels 1.5x the spacing)."""
    import numpy as np
    from scipy import ndimage as ndi
    bl = _bench_module("blur")
    rng = np.random.default_rng(0)
    hu = rng.normal(30, 10, (162, 162, 4)).astype(np.float32)
    hu[:, :, 2] = 500.                                     # a constant slice stays constant: nothing mixes along z
    mask = (rng.random(hu.shape) > 0.9).astype(np.uint8)
    aff = np.diag([3.75, 3.75, 5., 1.])
    scans = bl.blurred_scans(hu, mask, aff)
    assert list(scans) == ["none", "blur 0.5 px", "blur 0.75 px", "blur 1 px", "blur 1.25 px", "pixel 1.5x coarser"]
    assert np.array_equal(scans["none"][0], hu)
    for s in bl.BLUR_PX:
        h, m, a = scans[f"blur {s:g} px"]
        assert np.array_equal(m, mask) and np.allclose(a, aff) and np.allclose(h[:, :, 2], 500.)
        k = ndi.gaussian_filter1d(np.eye(1, 17, 8)[0], s)                  # the 1-D kernel; in-plane: its square
        assert abs(h[8:-8, 8:-8, 0].var() / 100 / (k ** 2).sum() ** 2 - 1) < 0.15, s
    h, m, a = scans["pixel 1.5x coarser"]
    assert h.shape == (108, 108, 4) and m.shape == h.shape and np.allclose(np.diag(a)[:3], [5.625, 5.625, 5.])


def _fake_run(folder: Path, settings: dict, dice: float, change: float) -> Path:
    """A run folder with what `bench/noise_augmentation.summary` reads: per-patient Dice of a strategy and an adapter,
    robustness rows (none and noise 15 HU), the leave-one-head-out rows and the clean held-out head."""
    import pandas as pd
    (folder / "report").mkdir(parents=True)
    (folder / "provenance.json").write_text(json.dumps({"settings": settings}))
    pd.DataFrame([dict(experiment=e, model=m, id=str(i), fold="1", dice=dice) for e, m in
                  (("strategy", "All"), ("adapter", "LoRA-C64")) for i in range(3)]).to_csv(folder / "per_patient.csv")
    pd.DataFrame([dict(evaluation="cross-validation test folds", model=f"net-{m}", id=str(i), perturbation=p,
                       rel_change=0.0 if p == "none" else change, dice=dice)
                  for m in ("All", "LoRA-C64") for i in range(3) for p in ("none", "noise 15 HU")]).to_csv(
        folder / "report" / "robustness_per_patient.csv")
    pd.DataFrame([dict(model=m, network_ml=4.0, predicted_ml=1.0) for m in ("All", "LoRA-C64")]).to_csv(
        folder / "report" / "generalization_clean.csv")
    pd.DataFrame([dict(model=m, held_out="ct_head", dice_in=dice, dice_out=dice - 0.1, volume_error_out=0.2,
                       clean_network_ml=4.0, clean_predicted_ml=1.0) for m in ("All", "LoRA-C64")]).to_csv(
        folder / "report" / "generalization.csv")
    return folder


def test_training_length_compares_each_long_run_with_the_short_one_of_its_draw(tmp_path):
    """bench/training_length.py's `rows`: one row per profile and role, the epochs of the profile, each volume change's
    ratio to the short profile of the same cohort seed; a run folder of other epochs is refused, naming it."""
    import pytest
    from saharank.settings import load_settings
    tl = _bench_module("training_length")
    folders = {}
    for p, change in (("smoke", 0.2), ("smoke-long", 0.5), ("smoke-seed1", 0.4), ("smoke-long-seed1", 0.2)):
        folders[p] = _fake_run(tmp_path / p, load_settings(p).as_dict(), 0.6, change)
    t = tl.rows(folders)
    assert list(t.profile) == [p for p in folders for _ in range(2)] and set(t.selected) == {"best strategy",
                                                                                           "best adapter"}
    assert list(t["epochs (pre-training / fine-tuning)"][::2]) == ["6 / 3", "18 / 9", "6 / 3", "18 / 9"]
    assert list(t["noise 15 HU: ratio to smoke"][::2]) == [1.0, 2.5, 1.0, 0.5]
    assert list(t["clean held-out head mL"]) == [1.0] * 8
    wrong = _fake_run(tmp_path / "wrong", load_settings("smoke").as_dict(), 0.6, 0.1)
    with pytest.raises(SystemExit, match="wrong: pre-trained 6 epochs"):
        tl.rows({"smoke-long": wrong})


def test_augmentation_reads_a_committed_report_as_its_run():
    """bench/noise_augmentation.py's `summary` of a report committed under figures/ (no per_patient.csv, no
    settings: the models of its leave-one-out table, their Dice from table2/3.csv) gives the rows `summary` gave of
    the run folder itself: figures/training-length was made from runs/smoke-long(-seed1), whose reports are
    figures/smoke-long(-seed1)."""
    import pandas as pd
    na = _bench_module("noise_augmentation")
    made = pd.read_csv(ROOT / "figures" / "training-length" / "training_length.csv")
    for profile, seed in (("smoke-long", 0), ("smoke-long-seed1", 1)):
        assert na.is_report(ROOT / "figures" / profile)
        rows = pd.DataFrame(na.summary("finetune_epochs", 9, ROOT / "figures" / profile, 9, seed))
        ref = made[made.profile == profile].reset_index(drop=True)
        assert list(rows.model) == list(ref.model) and list(rows.selected) == list(ref.selected)
        for c in rows.columns.drop("finetune_epochs"):
            assert list(rows[c].astype(str)) == list(ref[c].astype(str)), (profile, c)
    # and figures/noise-augmentation-smoke-long's 16 HU rows (made from the run folders) from their committed reports
    made = pd.read_csv(ROOT / "figures" / "noise-augmentation-smoke-long" / "noise_augmentation.csv")
    for profile, seed in (("smoke-long-noise16", 0), ("smoke-long-noise16-seed1", 1)):
        rows = pd.DataFrame(na.summary("intensity_noise_hu", 16.0, ROOT / "figures" / profile, 8.0, seed))
        ref = made[(made.intensity_noise_hu == 16) & (made.seed == seed)].reset_index(drop=True)
        for c in rows.columns:
            assert list(rows[c].astype(str)) == list(ref[c].astype(str)), (profile, c)


def test_flip_axis_reads_the_committed_engine_5_reports():
    """bench/flip_axis.py: the engine-5 columns of the committed figures/flip-axis/flip_axis_tables.csv (Tables 2-3
    and the verdicts) are what `table_rows` reads from the committed reports figures/smoke and figures/smoke-seed1,
    and their selected models' rows are `model_rows`'; a run of another engine than the one named is refused."""
    import pandas as pd
    import pytest
    fa = _bench_module("flip_axis")
    fig = ROOT / "figures" / "flip-axis"
    tables = pd.read_csv(fig / "flip_axis_tables.csv", index_col=0, keep_default_na=False)
    models = pd.read_csv(fig / "flip_axis.csv")
    for profile in ("smoke", "smoke-seed1"):
        runs = {(profile, "after"): ROOT / "figures" / profile}
        col = f"{profile}, engine 5"
        assert fa.table_rows(runs)[col].tolist() == tables[col].tolist()
        rows = fa.model_rows(runs)
        ref = models[(models.profile == profile) & (models.engine == 5)].reset_index(drop=True)
        for c in rows.columns:
            assert list(rows[c].astype(str)) == list(ref[c].astype(str)), (profile, c)
    with pytest.raises(SystemExit, match="engine 5, not 4"):
        fa.model_rows({("smoke", "before"): ROOT / "figures" / "smoke"})


def test_test_time_flip_bench_reads_the_same_weights_again(tmp_path):
    """bench/noise_augmentation.py --setting test_time_flip: a reading setting's run starts as a copy of the first
    value's run folder without its report (a folder without provenance.json is refused, nothing made); the committed
    figures/test-time-flip rows read once (0) are the rows of the committed smoke reports of each draw."""
    import pandas as pd
    import pytest
    na = _bench_module("noise_augmentation")
    assert "test_time_flip" in na.READING
    src = tmp_path / "run"
    (src / "runs").mkdir(parents=True)
    (src / "report").mkdir()
    (src / "provenance.json").write_text("{}")
    (src / "runs" / "All-fold1-0123.safetensors").write_bytes(b"w")
    (src / "report" / "table2.md").write_text("old")
    na.copy_trained(src, tmp_path / "copy")
    assert (tmp_path / "copy" / "runs" / "All-fold1-0123.safetensors").read_bytes() == b"w"
    assert not (tmp_path / "copy" / "report").exists()
    with pytest.raises(SystemExit, match="not a run folder"):
        na.copy_trained(src / "runs", tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    made = pd.read_csv(ROOT / "figures" / "test-time-flip" / "flip_augmentation.csv")
    for profile, seed in (("smoke", 0), ("smoke-seed1", 1)):
        rows = pd.DataFrame(na.summary("test_time_flip", 0.0, ROOT / "figures" / profile, False, seed))
        ref = made[(made.test_time_flip == 0) & (made.seed == seed)].reset_index(drop=True)
        for c in rows.columns:
            assert list(rows[c].astype(str)) == list(ref[c].astype(str)), (profile, c)
