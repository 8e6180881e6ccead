"""Calibration to the brain (`brain_reference_hu` in settings.ini, `saharank.data.calibrate_hu`): a scanner's global HU
offset cancels exactly in training slices, in prediction and in `saharank predict` (a subprocess, as users run it),
and a model without calibration (the paper's protocol) does see the offset. Real files: the CQ500 slice of
pydicom-data."""
import json, subprocess, sys

import nibabel as nib
import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

from saharank.cohort import phantom_anatomy
from saharank.data import brain_reference_hu, calibrate_hu, write_case
from saharank.dicom import read_dicom_series
from saharank.models import build_model
from saharank.predict import segment_volume
from saharank.settings import deviations, load_settings
from saharank.training import load_slices, save_checkpoint

OFFSETS = (-8.0, 8.0)


@pytest.fixture(scope="module")
def head():
    a = phantom_anatomy()
    hu = a.hu.copy()
    hu[hu.shape[0] // 2 - 6:hu.shape[0] // 2 + 2, 40:48, 30:40] = 65.     # a hyperdense hematoma
    return hu, a.affine


def net():
    torch.manual_seed(0)
    return build_model("unet", width=4, depth=2).eval()


def test_reference_moves_with_a_global_offset_on_real_ct(tmp_path):
    """The real CQ500 slice (no hemorrhage): its brain lies at normal density, and the estimate moves with an offset
    exactly (the thresholds of the second pass move with it)."""
    import shutil
    f = get_testdata_file("693_UNCR.dcm", download=False)
    assert f, "693_UNCR.dcm comes with pydicom-data (pip install pydicom-data)"
    shutil.copy(f, tmp_path / "693_UNCR.dcm")
    hu = read_dicom_series(tmp_path)[0]
    ref = brain_reference_hu(hu)
    assert 20 < ref < 45, ref
    for o in OFFSETS + (-4.0, 4.0, 15.0):
        assert brain_reference_hu(hu + o) == pytest.approx(ref + o, abs=1e-3), o


def test_training_slices_are_the_same_under_an_offset(head, tmp_path):
    hu, aff = head
    mask = (hu == 65.).astype(np.uint8)
    for i, o in enumerate((0.0,) + OFFSETS):
        write_case(tmp_path, f"c{i}", hu + o, mask, aff)
    ids = ["c0", "c1", "c2"]
    cal = load_slices(tmp_path, ids, (40., 120.), 20., brain_reference_hu=30.)
    n = len(cal) // 3
    assert cal.brain_reference_hu == 30.
    for k in (1, 2):
        np.testing.assert_allclose(cal.images[k * n:(k + 1) * n], cal.images[:n], atol=1e-6)
    raw = load_slices(tmp_path, ids, (40., 120.), 20.)
    assert np.abs(raw.images[n:2 * n] - raw.images[:n]).max() > 0.02          # without calibration the offset shows


def test_prediction_is_invariant_to_an_offset_only_with_calibration(head):
    hu, aff = head
    m = net()
    base = segment_volume(m, hu, aff, (40., 120.), 2.0, brain_reference_hu=30.)[1]
    for o in OFFSETS:
        np.testing.assert_allclose(segment_volume(m, hu + o, aff, (40., 120.), 2.0, brain_reference_hu=30.)[1], base,
                                   atol=1e-5)
    raw = segment_volume(m, hu, aff, (40., 120.), 2.0)[1]
    assert np.abs(segment_volume(m, hu + 8, aff, (40., 120.), 2.0)[1] - raw).max() > 1e-3
    no_brain = np.full((32, 32, 4), 30., np.float32)
    with pytest.raises(ValueError, match="scan.nii.gz: cannot calibrate to the brain"):
        segment_volume(m, no_brain, np.eye(4), (40., 120.), 1.0, brain_reference_hu=30., name="scan.nii.gz")


def test_predict_cli_uses_the_models_calibration(head, tmp_path):
    """`saharank predict` with a checkpoint whose description records brain_reference_hu: the same mask for the scan
    and the scan 8 HU brighter, and the report says which calibration was used."""
    hu, aff = head
    ck = save_checkpoint(net(), tmp_path / "unet.safetensors",
                         dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.0,
                              canvas_px=128, slab_mm=5.0,
                              brain_reference_hu=30.0))
    masks = []
    for name, o in (("a", 0.0), ("b", 8.0)):
        nib.save(nib.Nifti1Image((hu + o).astype(np.int16), aff), tmp_path / f"{name}.nii.gz")
        r = subprocess.run([sys.executable, "-m", "saharank", "predict",
                            str(tmp_path / f"{name}.nii.gz"), "--model", str(ck),
                            "--out", str(tmp_path / f"o{name}"), "--device", "cpu", "--threshold", "0.45"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        rep = json.loads((tmp_path / f"o{name}" / "report.json").read_text())
        assert rep["model"]["brain_reference_hu"] == 30.0
        masks.append(np.asarray(nib.load(tmp_path / f"o{name}" / "mask.nii.gz").dataobj))
    assert masks[0].shape == hu.shape and (masks[0] == masks[1]).all()


def test_settings_calibration_is_a_listed_deviation():
    assert load_settings("DEFAULT").brain_reference_hu is None                 # the paper: absolute HU
    for p in ("smoke", "smoke-ranks", "gpu"):
        assert load_settings(p).brain_reference_hu == 30.0
    rows = {r["setting"]: r for r in deviations(load_settings("smoke"))}
    assert "brain_reference_hu" in rows, sorted(rows)
    assert calibrate_hu(np.zeros(3), None).dtype == np.float32


def test_predict_cli_keeps_voxels_inside_the_skull_and_above_the_bound(tmp_path):
    """The real CQ500 slice (no hemorrhage) through `saharank predict` at threshold 0, where the network's mask is the
    whole slice: without post-processing that is the volume reported; with the model's `postprocessing` (a 40 HU bound,
    the intracranial space) only voxels inside the space found in the slice and at or above 40 HU are left, voxel by
    voxel, and report.json records both the setting and the space's volume."""
    import shutil
    from saharank.predict import read_ct
    f = get_testdata_file("693_UNCR.dcm", download=False)
    assert f, "693_UNCR.dcm comes with pydicom-data (pip install pydicom-data)"
    (tmp_path / "in").mkdir()
    shutil.copy(f, tmp_path / "in" / "693_UNCR.dcm")
    reps = {}
    for name, post in (("none", None), ("blood", dict(blood_min_hu=40.0, intracranial=True))):
        ck = save_checkpoint(net(), tmp_path / f"unet-{name}.safetensors",
                             dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120],
                                  pixel_mm=2.0, canvas_px=128, slab_mm=5.0, postprocessing=post))
        out = tmp_path / f"o-{name}"
        r = subprocess.run([sys.executable, "-m", "saharank", "predict", str(tmp_path / "in"), "--model",
                            str(ck), "--out", str(out),
                            "--device", "cpu", "--threshold", "0"], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        reps[name] = json.loads((out / "report.json").read_text())
        assert reps[name]["model"]["postprocessing"] == post
    assert (reps["none"]["intracranial_ml"] is None
            and reps["none"]["volume_ml"] == reps["none"]["network_volume_ml"] > 100)
    space_ml = reps["blood"]["intracranial_ml"]
    assert 20 < space_ml < reps["none"]["volume_ml"], reps["blood"]  # the brain of one slice, not the air around it
    assert 0 < reps["blood"]["volume_ml"] < space_ml
    hu = read_ct(tmp_path / "in")[0]
    mask = np.asarray(nib.load(tmp_path / "o-blood" / "mask.nii.gz").dataobj) > 0
    assert mask.any() and hu[mask].min() >= 40.0
