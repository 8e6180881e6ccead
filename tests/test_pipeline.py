"""End-to-end checks of the `saharank` command and of `reproduce` (fast: a synthetic phantom head, no download)."""
import hashlib, json, subprocess, sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saharank.experiment import reproduce
from saharank.settings import SETTINGS_FILE, load_settings
from saharank.cohort import phantom_anatomy

ROOT = Path(__file__).resolve().parents[1]

TINY = """[DEFAULT]
seed = 7
tbi_patients = 6
tbi_validation = 2
tbi_no_injury = 1
sah_bin_edges_ml = 0, 25, 50, 100, 300
sah_bin_counts = 1, 2, 1, 2
image_size = 32
field_of_view_mm = 240
slice_thickness_mm = 5.0
window_level = 40
window_width = 120
unet_width = 4
unet_depth = 2
multiview_width = 4
norm = instance
pretrain_epochs = 1
finetune_epochs = 1
learning_rate = 0.001
batch_size = 8
folds = 3
threshold = 0.5
contrast_factors = 1.0, 0.8
flip_probability = 0.5
elastic_probability = 0.5
elastic_alpha_mm = 6.0
elastic_sigma_mm = 12.0
strategies = None, Decoding
adapter_methods = lora-c, cp-dora
ranks = 2, 4
alpha_factor = 2
rank_reference_width = none
scratch_controls = false
nested_selection = false
empty_slice_fraction = 0.5
amp = none
channels_last = false
replicates = 1
deterministic = true
tbi_institutions = 3
intensity_augmentation = true
intensity_probability = 0.5
intensity_hu_shift = 10
intensity_hu_scale = 0.05
intensity_noise_hu = 8
intensity_blur_px = 0.5, 1.0
intensity_bias_hu = 5
intensity_gamma = 0.8, 1.25
intensity_bone_rise_hu = 15
brain_reference_hu = 30
flatten_bone_profile = true
heads = cranium
sah_patterns = pockets, cisternal
postprocess = blood
blood_keep_fraction = 0.98
inner_validation_fraction = 0.25
test_time_flip = false
baselines =
baseline_adapter_methods = lora-c, cp-dora
baseline_rank = 4
baseline_alpha = 8
baseline_dropout = 0.1
baseline_adapter_scaling = lora
litemedsam_image_size = 64
litemedsam_window_hu = 30, 100
litemedsam_epochs = 1
litemedsam_batch_size = 4
litemedsam_learning_rate = 0.0005
litemedsam_weight_decay = 0.01
litemedsam_train_slices = 8
litemedsam_adapter_scope = decoder
litemedsam_loss = dice+bce
samihs_bottleneck = 8
swinunetr_feature_size = 12
swinunetr_rank = 2
swinunetr_adapter_methods = lora-c

[tiny]
"""


@pytest.fixture(scope="module")
def tiny_settings(tmp_path_factory):
    p = tmp_path_factory.mktemp("settings") / "tiny.ini"
    p.write_text(TINY)
    return p


def test_packaged_settings_are_the_repository_settings():
    assert SETTINGS_FILE.read_text() == (ROOT / "settings.ini").read_text()
    assert load_settings("full")["ranks"] == [2, 4, 8, 16, 32, 64, 96, 128]


def test_reproduce_runs_end_to_end_and_is_deterministic(tiny_settings, tmp_path, monkeypatch):
    anatomy = phantom_anatomy()
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        res = reproduce("tiny", out, settings=tiny_settings, device="cpu", progress=False,
                        verbose=False, anatomy=anatomy,
                        report=run == "a")
        outs.append(out)
    # the robustness report: every perturbation for the two selected configurations (cross-validation folds) and the
    # deployable models; the folds' models trained again are the models of the tables (same Dice, patient by patient)
    rob = pd.read_csv(outs[0] / "report" / "robustness_per_patient.csv", keep_default_na=False)
    from saharank.robustness import PERTURBATIONS
    assert (set(rob.perturbation) == set(PERTURBATIONS)
            and set(rob.evaluation) == {"cross-validation test folds", "deployable, in-sample"})
    per0 = pd.read_csv(outs[0] / "per_patient.csv", dtype={"id": str, "model": str}, keep_default_na=False)
    cv = rob[(rob.evaluation == "cross-validation test folds") & (rob.perturbation == "none")]
    assert cv.model.nunique() == 2 and len(cv) == 2 * per0.id.nunique()
    for _, r in cv.iterrows():
        same = per0[(per0.model == r.model.split("-", 1)[1]) & (per0.id == str(r.id))]
        assert len(same) == 1 and abs(float(same.dice.iloc[0]) - r.dice) < 1e-6, (r.model, r.id, r.dice,
                                                                                  same.dice.tolist())
    summ = pd.read_csv(outs[0] / "report" / "robustness.csv")
    assert len(summ) == len(PERTURBATIONS) * 4 and (outs[0] / "report" / "robustness.png").stat().st_size > 0
    assert "Goal (issue: median relative volume change" in (outs[0] / "report" / "robustness.md").read_text()
    # the papermill report: every table and figure of the paper, beside the executed notebooks
    rep = outs[0] / "report"
    for name in ("table1.csv", "table2_side_by_side.md", "table3_side_by_side.csv", "fig2_overlays.png",
                 "fig3_volumes.png", "fig4_dice_vs_rank.png", "findings.md", "report_provenance.json",
                 "01_tables.ipynb", "03_findings.ipynb"):
        assert (rep / name).stat().st_size > 0, name
    for name in ("per_patient.csv", "table2.csv", "table3.csv", "table2_numeric.csv", "table3_numeric.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    per = pd.read_csv(outs[0] / "per_patient.csv", keep_default_na=False)  # strategy "None" is a name
    # every SAH patient is tested once per run: 2 strategies + 2 methods x 2 ranks
    assert per.groupby("model").id.nunique().eq(6).all()
    assert set(per.model) == {"None", "Decoding", "LoRA-C2", "LoRA-C4", "CP-DoRA2", "CP-DoRA4"}
    assert per.dice.between(0, 1).all()
    t2 = pd.read_csv(outs[0] / "table2.csv", index_col=0, keep_default_na=False)
    assert list(t2.loc["Number of Patients"]) == ["1", "2", "1", "2", "6"]
    assert list(t2.index[1:]) == ["None", "Decoding"]
    t3 = pd.read_csv(outs[0] / "table3.csv", index_col=0)
    assert len(t3) == 3 and {m.rstrip("0123456789") for m in t3.index[1:]} == {"LoRA-C", "CP-DoRA"}
    man = pd.read_csv(outs[0] / "cohorts" / "sah" / "manifest.csv")
    assert (man.anatomy_sha256 == "phantom").all()
    assert man.bin.value_counts().to_dict() == {"(0, 25]": 1, "(25, 50]": 2, "(50, 100]": 1, "(100, 300]": 2}
    # resume: a rerun into the same folder reuses every finished run and writes the same files; so does a
    # run that lost half of its finished runs (as if killed part-way)
    before = (outs[0] / "per_patient.csv").read_bytes()
    runs = sorted((outs[0] / "runs").glob("*.csv"))
    # the grid's runs (2 strategies and 2 adapter ranks x 2 methods, 3 folds each) and leave one SAH pattern out (the 2
    # selected configurations without each of the 2 patterns)
    assert len([r for r in runs if "-without-" not in r.name]) == 2 * 3 + 2 * 2 * 3
    assert (sorted(r.name.split("-without-")[1].split("-")[0] for r in runs if "-without-" in r.name)
            == ["cisternal"] * 2 + ["pockets"] * 2)
    for f in runs[::2]: f.unlink()
    reproduce("tiny", outs[0], settings=tiny_settings, device="cpu", progress=False, verbose=False,
              anatomy=anatomy, report=False)
    assert (outs[0] / "per_patient.csv").read_bytes() == before
    assert not list((outs[0] / "state").glob("*"))                        # no training state left behind
    prov = (outs[0] / "provenance.json").read_text()
    assert '"anatomy"' in prov and '"torch"' in prov and "wall_time_s" in prov
    assert set(res) >= {"table2", "table3", "per_patient"}
    # surface distances and volume difference per patient, summarised in the report
    assert {"hd95_mm", "assd_mm", "volume_difference_ml"} <= set(per.columns)
    assert np.allclose(per.volume_difference_ml, per.predicted_ml - per.annotated_ml, atol=1e-5)
    assert (rep / "surface_distances.csv").stat().st_size > 0
    # the deployable models: Table 3's best adapter configuration and Table 2's best strategy, trained on all SAH
    # patients
    models = sorted(p.name for p in (outs[0] / "models").iterdir())
    best_adapter = t3.index[1:][np.argmax([float(v.split()[0]) for v in t3["All"][1:]])]
    assert models == sorted([f"sah-unet-{best_adapter}",
                             f"sah-multiview-{t2.index[1:][np.argmax([float(v.split()[0]) for v in t2['All'][1:]])]}"])
    for name in models:
        card = json.loads((outs[0] / "models" / name / "model_card.json").read_text())
        assert card["training_cohort"]["patients"] == 6 and "not a medical device" in card["intended_use"].lower()
        assert (card["training_cohort"]["manifest_sha256"]
                == hashlib.sha256((outs[0] / "cohorts" / "sah" / "manifest.csv").read_bytes()).hexdigest())
        assert set(card["cross_validated_dice"]) == {"(0, 25]", "(25, 50]", "(50, 100]", "(100, 300]", "All"}
        for f in (("base.safetensors", "model_card.json")
                  + (("adapter/adapters.safetensors",) if "unet" in name else ())):
            assert ((outs[0] / "models" / name / f).read_bytes()
                    == (outs[1] / "models" / name / f).read_bytes()), (name, f)
    assert (outs[0] / "models" / f"sah-unet-{best_adapter}" / "adapter").is_dir()
    assert json.loads(prov)["models"] == [f"sah-unet-{best_adapter}", [m for m in models if "multiview" in m][0]]
    # `saharank predict` takes a model folder
    case = sorted((outs[0] / "cohorts" / "sah" / "images").glob("*.nii.gz"))
    r = subprocess.run([sys.executable, "-m", "saharank", "predict", str(case[0]), "--model",
                        str(outs[0] / "models" / f"sah-unet-{best_adapter}"),
                        "--out", str(tmp_path / "pred"), "--device", "cpu"], capture_output=True, text=True)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (json.loads((tmp_path / "pred" / "report.json").read_text())["model"]["card"]["name"]
            == f"sah-unet-{best_adapter}")
    # another reading of the same run (flip test-time augmentation, run key 'evaluate'): nothing is trained again
    # (training would fail here), every task is evaluated again into its own rows beside the weights it found
    import saharank.grid
    from saharank.grid import reading_suffix
    tta = tmp_path / "tta.ini"
    tta.write_text(TINY.replace("test_time_flip = false", "test_time_flip = true"))
    suffix = reading_suffix(load_settings("tiny", tta))
    weights = sorted(p.name for p in (outs[1] / "runs").glob("*.safetensors"))
    monkeypatch.setattr(saharank.grid, "train_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    flips, evaluate = [], saharank.grid.evaluate_patients
    monkeypatch.setattr(saharank.grid, "evaluate_patients",
                        lambda *a, **k: flips.append(k["test_time_flip"]) or evaluate(*a, **k))
    reproduce("tiny", outs[1], settings=tta, device="cpu", progress=False, verbose=False, anatomy=anatomy,
              report=False, deploy=False, robustness=False, jobs=1)
    assert sorted(p.name for p in (outs[1] / "runs").glob("*.safetensors")) == weights
    # the grid's tasks (the leave-one-out ones come with the robustness stage, left out here)
    once = sorted(p.name for p in (outs[1] / "runs").glob("*.csv")
                  if "-read" not in p.name and "-without-" not in p.name)
    assert sorted(p.name for p in (outs[1] / "runs").glob(f"*{suffix}.csv")) == [
        n.removesuffix(".csv") + f"{suffix}.csv" for n in once]
    twice = pd.read_csv(outs[1] / "per_patient.csv", keep_default_na=False)
    key = ["model", "fold", "id"]
    both = per.merge(twice, on=key, suffixes=("", "_tta"))
    assert len(both) == len(per) == len(twice)
    assert len(flips) == len(once) and all(flips)                          # each task read with the flip
    assert json.loads((outs[1] / "provenance.json").read_text())["settings"]["test_time_flip"] is True


def test_cli_refuses_bad_settings_with_a_clear_error(tmp_path):
    bad = tmp_path / "broken.ini"
    bad.write_text("[smoke]\nseed = 1\n")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--settings", str(bad), "--out", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert "broken.ini" in r.stderr and "lacks the setting" in r.stderr
    assert not out.exists()


def test_cli_unknown_profile(tmp_path):
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--profile", "nosuch", "--out",
                        str(tmp_path / "o")], capture_output=True, text=True)
    assert r.returncode == 2 and "no profile [nosuch]" in r.stderr


def write_bhsd(root: Path, n_sah=6, n_other=6):
    """A tiny BHSD copy in its nnU-Net layout (imagesTr/<case>_0000.nii.gz, labelsTr/<case>.nii.gz; labels
    1 EDH, 2 IPH, 3 IVH, 4 SAH, 5 SDH): brain at 30 HU inside a skull, hematomas at 70 HU."""
    import nibabel as nib
    import numpy as np
    rng = np.random.default_rng(0)
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    aff = np.diag([2.0, 2.0, 5.0, 1.0])
    for i in range(n_sah + n_other):
        img = rng.normal(30, 4, (32, 32, 6)).astype(np.int16)
        lab = np.zeros((32, 32, 6), np.uint8)
        r, c = rng.integers(4, 20, 2)
        lab[r:r + 8, c:c + 8, 2:4] = 4 if i < n_sah else rng.choice([1, 2, 5])
        if i < n_sah and i % 2: lab[2:5, 2:5, 1] = 2  # an IPH beside the SAH: stays unlabelled in the SAH cohort
        img[lab > 0] = 70
        # a (square) skull around the brain: what calibration reads
        img[:2] = img[-2:] = img[:, :2] = img[:, -2:] = 1000
        nib.save(nib.Nifti1Image(img, aff), root / "imagesTr" / f"ID_{i:03d}_0000.nii.gz")
        nib.save(nib.Nifti1Image(lab, aff), root / "labelsTr" / f"ID_{i:03d}.nii.gz")
    return root


def test_reproduce_on_bhsd_layout(tiny_settings, tmp_path):
    root = write_bhsd(tmp_path / "BHSD")
    out = tmp_path / "run"
    reproduce("tiny", out, settings=tiny_settings, device="cpu", progress=False, verbose=False, dataset="bhsd",
              root=root, report=False)
    tbi = pd.read_csv(out / "cohorts" / "tbi" / "manifest.csv", keep_default_na=False)
    sah = pd.read_csv(out / "cohorts" / "sah" / "manifest.csv", keep_default_na=False)
    assert len(tbi) == 6 and len(sah) == 6
    assert set(sah.split) == {"fold1", "fold2", "fold3"}
    per = pd.read_csv(out / "per_patient.csv", keep_default_na=False)
    assert per.groupby("model").id.nunique().eq(6).all()
    # the SAH annotation is label 4 alone: 8 x 8 x 2 voxels of 2 x 2 x 5 mm = 2.56 mL
    assert sah.volume_ml.round(4).eq(2.56).all()
    # imported once: a second call (another shard, the assembling call) reuses the cohorts instead of rewriting them
    assert json.loads((out / "cohorts" / "bhsd.json").read_text())["dataset"] == "bhsd"
    before = (out / "cohorts" / "sah" / "manifest.csv").stat().st_mtime_ns
    reproduce("tiny", out, settings=tiny_settings, device="cpu", progress=False, verbose=False, dataset="bhsd",
              root=root, report=False)
    assert (out / "cohorts" / "sah" / "manifest.csv").stat().st_mtime_ns == before
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce",
                        "--dataset", "bhsd", "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "needs --root" in r.stderr


def test_parallel_runs_and_time_limit_resume_give_the_same_results(tiny_settings, tmp_path):
    """One run at a time (--jobs 1, in this process), two at once (--jobs 2, worker processes) and a reproduction cut
    by --time-limit and resumed, call after call, end with the same files byte for byte: on the CPU every run
    computes with one thread whatever --jobs is (a thread count changes the order of sums), so the tables do not
    depend on --jobs; this process keeps its own threads."""
    import torch
    from saharank.grid import Stopped
    anatomy = phantom_anatomy()
    threads = torch.get_num_threads()
    kw = dict(settings=tiny_settings, device="cpu", progress=False, verbose=False, anatomy=anatomy, report=False)
    reproduce("tiny", tmp_path / "serial", jobs=1, **kw)
    assert torch.get_num_threads() == threads
    reproduce("tiny", tmp_path / "jobs2", jobs=2, **kw)
    stops = 0
    for _ in range(60):                    # each call finishes at least one epoch before its limit is checked
        try:
            reproduce("tiny", tmp_path / "cut", jobs=1, time_limit=0.5 if stops else 0.0, **kw)
            break
        except Stopped as e:
            stops += 1
            assert "run the same command again to resume" in str(e)
    else:
        raise AssertionError("the time-limited reproduction never finished")
    assert stops >= 2                          # it really was cut, more than once
    for name in ("per_patient.csv", "table2.csv", "table3_numeric.csv"):
        ref = (tmp_path / "serial" / name).read_bytes()
        assert (tmp_path / "jobs2" / name).read_bytes() == ref, name
        assert (tmp_path / "cut" / name).read_bytes() == ref, name
    assert not list((tmp_path / "cut" / "state").glob("*"))
    import json
    # every call recorded: the total wall time survives the cuts
    calls = json.loads((tmp_path / "cut" / "calls.json").read_text())
    assert [c["status"] for c in calls] == ["stopped"] * stops + ["finished"]
    assert calls[-1]["finished_runs"] == len(list((tmp_path / "cut" / "runs").glob("*.csv")))
    assert '"jobs": 2' in (tmp_path / "jobs2" / "provenance.json").read_text()


def test_replicates_finished_before_the_time_limit_give_the_report_with_fewer_replicates(tiny_settings, tmp_path):
    """A 2-replicate reproduction stopped by the time limit once replicate 0 is complete says so (its message and
    calls.json), and the same call with --replicates 1 then writes the tables from replicate 0 without training again:
    those of a 1-replicate run, byte for byte. This is what tools/device/gpu_profile.sh does when one device call
    cannot finish every replicate of the gpu profile."""
    from saharank.grid import Stopped, list_runs
    kw = dict(settings=tiny_settings, device="cpu", progress=False, verbose=False, anatomy=phantom_anatomy(),
              report=False, deploy=False)
    reproduce("tiny", tmp_path / "one", **kw)
    out = tmp_path / "two"
    ids = list_runs(load_settings("tiny", tiny_settings).replace(replicates=2), ["fold1", "fold2", "fold3"])
    # both pre-trainings, replicate 0's runs
    first = [i for i in ids if i.startswith("pretrain") or i.endswith("-rep0")]
    assert len(first) == 4 + 6 * 3
    reproduce("tiny", out, replicates=2, only=first, **kw)
    with pytest.raises(Stopped,
                       match=r"Replicates 0-0 of 2 are complete: the same command with --replicates 1 writes"):
        reproduce("tiny", out, replicates=2, time_limit=0.0, **kw)
    calls = json.loads((out / "calls.json").read_text())
    assert [c["status"] for c in calls] == ["partial", "stopped"] and calls[-1]["complete_replicates"] == 1
    grid_runs = lambda: sorted(p.name for p in (out / "runs").glob("*.csv") if "-without-" not in p.name)
    runs = grid_runs()
    reproduce("tiny", out, replicates=1, **kw)
    assert grid_runs() == runs  # nothing of the grid trained again (leave one pattern out comes after the tables)
    for name in ("per_patient.csv", "table2.csv", "table3_numeric.csv"):
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


def test_cli_time_limit_exits_75_and_says_how_to_resume(tiny_settings, tmp_path):
    code = ("import sys; from saharank.cli import main; from saharank.cohort import phantom_anatomy; "
            "import saharank.cohort as c; "
            "c.HEADS['cranium'] = lambda cache_dir=None, allow_download=True: phantom_anatomy(); sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code, "reproduce", "--profile", "tiny", "--settings", str(tiny_settings),
                        "--out", str(tmp_path / "o"), "--time-limit", "0", "--quiet", "--device", "cpu"],
                       capture_output=True, text=True)
    assert r.returncode == 75, r.stderr
    assert "stopped by the time limit" in r.stderr and "again to resume" in r.stderr
    assert not (tmp_path / "o" / "per_patient.csv").exists()


def test_list_runs_only_and_shards_give_the_single_process_results(tiny_settings, tmp_path):
    """The cluster recipe without a cluster: pre-training alone, two shards, then the assembling call, against
    one uninterrupted call: the same per-patient results and tables, byte for byte."""
    anatomy = phantom_anatomy()
    kw = dict(settings=tiny_settings, device="cpu", progress=False, verbose=False, anatomy=anatomy, report=False)
    r = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--profile", "tiny", "--settings",
                        str(tiny_settings), "--list-runs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert ids[:2] == ["pretrain-multiview", "pretrain-unet"] and len(ids) == 2 + 6 * 3 and len(set(ids)) == len(ids)
    reproduce("tiny", tmp_path / "single", **kw)
    out = tmp_path / "sharded"
    with pytest.raises(ValueError, match="pre-trained checkpoint is missing"):
        reproduce("tiny", out, shard=(0, 2), **kw)
    assert reproduce("tiny", out, only=["pretrain-multiview", "pretrain-unet"], **kw) == {"runs": ids[:2]}
    done = []
    for i in range(2):
        done += reproduce("tiny", out, shard=(i, 2), **kw)["runs"]
        assert not (out / "per_patient.csv").exists()
    assert sorted(done) == sorted(ids[2:])
    assert len(list((out / "runs").glob("*.csv"))) == len(ids) - 2
    reproduce("tiny", out, **kw)
    for name in ("per_patient.csv", "table2.csv", "table3.csv", "table2_numeric.csv", "table3_numeric.csv"):
        assert (out / name).read_bytes() == (tmp_path / "single" / name).read_bytes(), name


# the packaged [gpu] profile at the size of TINY: its own settings (replicates, deterministic, amp, loss, empty
# slices) on TINY's cohorts, networks and epochs; the grid's size settings of [gpu] are left to TINY
GPU_SIZES = ("image_size", "unet_width", "unet_depth", "multiview_width", "pretrain_epochs",
             "finetune_epochs", "batch_size",
             "baselines", "litemedsam_epochs")      # the bench's rows: tests/test_bench_rows.py


def gpu_at_tiny_size() -> str:
    import configparser
    cp = configparser.ConfigParser()
    cp.read(SETTINGS_FILE)
    # the section's own lines, not [DEFAULT]'s
    own = {k: v for k, v in cp._sections["gpu"].items() if k not in GPU_SIZES}
    assert {"replicates", "deterministic", "amp"} <= set(own)
    return TINY.replace("[tiny]\n", "[gpu]\n" + "".join(f"{k} = {v}\n" for k, v in own.items()))


def test_smoke_ranks_profile_is_smoke_with_every_rank():
    smoke, ranks, full = load_settings("smoke"), load_settings("smoke-ranks"), load_settings("full")
    assert ranks.ranks == full.ranks
    assert ranks.nested_selection and not smoke.nested_selection  # the nested selection over eight ranks: outside CI
    assert ranks.scratch_controls and not smoke.scratch_controls            # the scratch controls (110 s): outside CI
    assert ranks.replace(ranks=smoke.ranks, profile="smoke", nested_selection=False, scratch_controls=False) == smoke


def test_smoke_seed1_profile_is_smoke_on_another_cohort_draw():
    "[smoke-seed1] (figures/smoke-seed1) differs from [smoke] in the cohort seed only: other patients, same training."
    smoke, seed1 = load_settings("smoke"), load_settings("smoke-seed1")
    assert seed1.seed != smoke.seed
    assert seed1.replace(seed=smoke.seed, profile="smoke") == smoke


def test_smoke_long_profiles_are_smoke_trained_three_times_as_long_on_both_draws():
    """[smoke-long] (figures/smoke-long, bench/training_length.py) differs from [smoke] in the epochs only; its
    -seed1 in the seed."""
    smoke, seed1 = load_settings("smoke"), load_settings("smoke-seed1")
    long, long1 = load_settings("smoke-long"), load_settings("smoke-long-seed1")
    assert (long.pretrain_epochs, long.finetune_epochs) == (3 * smoke.pretrain_epochs, 3 * smoke.finetune_epochs)
    assert long.replace(pretrain_epochs=smoke.pretrain_epochs, finetune_epochs=smoke.finetune_epochs,
                        profile="smoke") == smoke
    assert long1.seed == seed1.seed and long1.replace(seed=smoke.seed, profile="smoke-long") == long
    # [smoke-long-noise16] (figures/smoke-long-noise16, bench/noise_augmentation.py --base smoke-long): the noise only
    noisy, noisy1 = load_settings("smoke-long-noise16"), load_settings("smoke-long-noise16-seed1")
    assert (noisy.intensity_noise_hu, long.intensity_noise_hu) == (16.0, 8.0)
    assert noisy.replace(intensity_noise_hu=8.0, profile="smoke-long") == long
    assert noisy1.replace(intensity_noise_hu=8.0, profile="smoke-long-seed1") == long1


def test_gpu_profile_is_the_whole_grid():
    gpu, full = load_settings("gpu"), load_settings("full")
    for k in ("tbi_patients", "tbi_validation", "tbi_no_injury", "sah_bin_counts", "folds", "strategies",
              "adapter_methods", "ranks"):
        assert gpu[k] == full[k], k
    assert len(gpu.strategies) == 6 and len(gpu.adapter_methods) == 6 and gpu.ranks == [2, 4, 8, 16, 32, 64, 96, 128]
    assert gpu.replicates >= 1 and gpu.deterministic is False and full.deterministic is False
    from saharank.bench import BASELINE_ROWS
    assert gpu.baselines == list(BASELINE_ROWS) and full.baselines == []  # the gpu profile includes the bench's rows


def test_reproduce_gpu_profile_with_two_replicates(tmp_path):
    """`saharank reproduce --profile gpu --replicates 2` end to end (at TINY's size, on the phantom, in a fresh
    process): per_patient.csv holds both replicates, the tables are their means, each finding states its verdict per
    replicate, the report lists the deviations from the paper's protocol, and the deployable models are trained
    once."""
    from saharank.evaluation import make_tables
    settings = tmp_path / "gpu-tiny.ini"
    settings.write_text(gpu_at_tiny_size().replace("heads = cranium\n", "heads = cranium, ct_head\n"))   # two heads
    out = tmp_path / "run"
    code = ("import sys, dataclasses; from saharank.cli import main; from saharank.cohort import phantom_anatomy; "
            "import saharank.cohort as c; "
            "c.HEADS['cranium'] = lambda cache_dir=None, allow_download=True: phantom_anatomy(); "
            "c.HEADS['ct_head'] = lambda cache_dir=None, allow_download=True: "
            "dataclasses.replace(phantom_anatomy(spacing=(2.8, 2.8, 2.8)), "
            "sha256='phantom-b'); sys.exit(main())")
    r = subprocess.run([sys.executable, "-c", code, "reproduce", "--profile", "gpu", "--settings",
                        str(settings), "--replicates", "2",
                        "--out", str(out), "--device", "cpu", "--quiet"], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    assert ("2 training replicates" in r.stdout and "deviations from the paper's protocol: " in r.stdout
            and "replicates 2 (paper 1)" in r.stdout)
    per = pd.read_csv(out / "per_patient.csv", keep_default_na=False)
    assert (sorted(per.replicate.unique()) == [0, 1]
            and list(per.columns).index("replicate") == list(per.columns).index("fold") + 1)
    assert per.groupby(["replicate", "model"]).id.nunique().eq(6).all()
    pre = json.loads((out / "pretraining.json").read_text())
    assert pre["unet"]["loss"] != pre["unet-rep1"]["loss"]            # replicate 1 trained with other seeds
    # the tables: the mean over replicates of each replicate's table, with the replicate-to-replicate SD beside the SD
    # between
    # patients
    from saharank.report import read_numeric
    t2, t3 = read_numeric(out / "table2_numeric.csv"), read_numeric(out / "table3_numeric.csv")
    each = [make_tables(per[per.replicate == s]) for s in (0, 1)]
    for b in dict.fromkeys(t2.columns.get_level_values(0)):
        assert np.allclose(t2[(b, "mean")], np.mean([e["table2"].loc[t2.index, (b, "mean")] for e in each], 0),
                           atol=2e-6, equal_nan=True), b
        assert np.allclose(t2[(b, "replicate_sd")],
                           np.std([e["table2"].loc[t2.index, (b, "mean")] for e in each], 0, ddof=1),
                           atol=2e-6, equal_nan=True), b
    for m in t3.index:
        assert abs(t3.loc[m, ("All", "mean")]
                   - np.mean([per[(per.replicate == s) & (per.model == m)].dice.mean() for s in (0, 1)])) < 2e-6
    assert t2[("All", "n")].eq(6).all() and "; replicates " in (out / "table2.md").read_text()
    # the report: per-replicate verdicts, the deviations from the paper's protocol beside the paper's values, Fig. 4
    # over
    # replicates
    rep = out / "report"
    findings = (rep / "findings.md").read_text()
    assert "in 2/2 replicates" in findings or "in 1/2 replicates" in findings or "in 0/2 replicates" in findings
    assert "replicate 0 (" in findings and "replicate 1 (" in findings
    dev = pd.read_csv(rep / "deviations.csv", keep_default_na=False).set_index("setting")
    assert dev.loc["replicates", "this run (gpu)"] == "2" and dev.loc["replicates", "paper's protocol"] == "1"
    assert (dev.loc["deterministic", "this run (gpu)"] == "false"
            and "section 3" in dev.loc["pretrain_epochs", "source (Settings.describe)"])
    assert "replicate_sd" in pd.read_csv(rep / "fig4_dice_vs_rank_summary.csv").columns
    # two heads: both in every cohort, and the leave-one-head-out report (each selected model without each head)
    sah = pd.read_csv(out / "cohorts" / "sah" / "manifest.csv", keep_default_na=False)
    assert sorted(sah["head"].unique()) == ["cranium", "ct_head"]
    # and two SAH patterns, each on both heads: leave one pattern out beside leave one head out
    assert (sah.groupby("head").sah_pattern.nunique().eq(2).all()
            and sorted(sah.sah_pattern.unique()) == ["cisternal", "pockets"])
    gen = pd.read_csv(rep / "generalization.csv", keep_default_na=False)   # strategy None is a name
    assert (sorted(gen.held_out.unique()) == ["cisternal", "cranium", "ct_head", "pockets"]
            and gen.groupby("held_out").model.nunique().eq(2).all())
    heads, patterns = gen[gen.held_out.isin(["cranium", "ct_head"])], gen[gen.held_out.isin(["cisternal", "pockets"])]
    assert (heads.patients.sum() == 2 * len(sah) and (heads.clean_network_ml != "").all()
            and "clean" in heads.goals.iloc[0])
    assert (patterns.patients.sum() == 2 * len(sah) and (patterns.clean_network_ml == "").all()
            and "clean" not in patterns.goals.iloc[0])
    assert len(list((out / "predictions" / "leave-one-pattern-out").iterdir())) == 4
    assert (out / "checkpoints" / "pretrained_unet-without-ct_head.safetensors").exists()
    for name in ("table2_side_by_side.md", "fig2_overlays.png", "fig3_volumes.png"):
        assert (rep / name).stat().st_size > 0, name
    # each replicate pre-trained and predicted on its own; the deployable models trained once (replicate 0)
    assert set(pre) == {"multiview", "unet", "multiview-rep1", "unet-rep1"}
    assert (out / "predictions" / "rep1").is_dir() and len(list((out / "models").iterdir())) == 2
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["replicates"] == 2 and prov["replicate_seeds"][0] == 7 and prov["paper_protocol"]["image_size"] == 256
    # --list-runs / --only / --shard with replicates: ids gain '-repK'; an id without it means every replicate
    kw = dict(settings=settings, device="cpu", progress=False, verbose=False,
              anatomy=phantom_anatomy(), report=False, replicates=2)
    ids = subprocess.run([sys.executable, "-m", "saharank", "reproduce", "--profile", "gpu", "--settings",
                          str(settings), "--replicates", "2",
                          "--list-runs"], capture_output=True, text=True).stdout.split()
    assert ids[:4] == ["pretrain-multiview-rep0", "pretrain-unet-rep0",
                       "pretrain-multiview-rep1", "pretrain-unet-rep1"]
    assert len(ids) == 2 * (2 + 6 * 3)
    assert reproduce("gpu", out, only=["pretrain-multiview", "pretrain-unet"], **kw) == {"runs": ids[:4]}
    assert reproduce("gpu", out, only=["None-fold1"], **kw) == {"runs": ["None-fold1-rep0", "None-fold1-rep1"]}
    assert sorted(reproduce("gpu", out, shard=(0, 2), **kw)["runs"]
                  + reproduce("gpu", out, shard=(1, 2), **kw)["runs"]) == sorted(ids[4:])


def test_scratch_controls_and_nested_selection_end_to_end(tiny_settings, tmp_path):
    """`reproduce` with the scratch controls and the nested selection (issue #29 parts 1 and 3) at TINY's size: the
    inner-validation runs never see the outer test fold, the nested Table 3 and the selection table are written, the
    findings come from the nested selection and name the transfer claim, the deployable models are the inner choice."""
    from saharank.evaluation import nested_best, nested_choices
    ini = tmp_path / "nested.ini"
    ini.write_text(TINY.replace("scratch_controls = false", "scratch_controls = true")
                   .replace("nested_selection = false", "nested_selection = true"))
    out = tmp_path / "run"
    reproduce("tiny", out, settings=ini, device="cpu", progress=False, verbose=False,
              anatomy=phantom_anatomy(), robustness=False)
    per = pd.read_csv(out / "per_patient.csv", keep_default_na=False, dtype={"id": str, "fold": str})
    inner = pd.read_csv(out / "inner_validation.csv", keep_default_na=False, dtype={"id": str, "fold": str})
    assert {"Scratch", "Scratch-long", "Unet-Scratch", "Unet-Scratch-long"} <= set(per.model)
    assert (per[per.model.str.contains("Scratch")].trainable > per[per.experiment == "adapter"].trainable.max()).all()
    assert set(inner.experiment) == {"strategy", "adapter"} and inner.fold.str.endswith("-inner").all()
    for fold, d in inner.groupby("fold"):  # inner validation patients are training patients of that fold
        outer = fold.removesuffix("-inner")
        assert not set(d.id) & set(per[per.fold == outer].id), fold
    assert len(nested_choices(inner)) == 3 * 2                  # 3 folds x 2 methods
    rep = out / "report"
    t3 = pd.read_csv(rep / "table3.csv", index_col=0, keep_default_na=False)
    assert (list(t3.index[-2:]) == ["Unet-Scratch", "Unet-Scratch-long"]
            and "Trainable parameters (share of the network)" in t3.columns)
    sel = pd.read_csv(rep / "table3_selection.csv", index_col=0)
    assert list(sel.index) == ["LoRA-C", "CP-DoRA"] and sel["nested: ranks per fold"].str.count("/").eq(2).all()
    assert (rep / "table3_nested.md").stat().st_size > 0 and (rep / "findings_test_folds.md").stat().st_size > 0
    f = pd.read_csv(rep / "findings.csv")
    assert f.claim.iloc[-1].startswith("Transfer from TBI beats training from scratch")
    assert f.evidence.str.contains(" nested").any()
    card = json.loads((out / "models" / f"sah-unet-{nested_best(inner, 'adapter')}" / "model_card.json").read_text())
    assert card["configuration"]["selected_by"] == "inner validation" and "nested selection" in card["selected_by"]
