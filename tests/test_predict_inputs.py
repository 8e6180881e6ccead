"""`saharank predict` on real files other projects made (pydicom's test files, pydicom-data, nibabel's test data), run
as users run it (`python -m saharank predict` in a subprocess): every image that is not a head CT is refused with
exit 2, one line `saharank: error: FILE: problem` and nothing written; every real CT is segmented, with one warning
line when something questions its HU (lossy compression, an assumed rescale) and a `warnings` column in volumes.csv;
"tilt corrected" appears only where a series was resampled."""
import csv, gzip, json, shutil, subprocess, sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from pydicom.data import get_testdata_file

from saharank.dicom import write_dicom_series
from saharank.models import build_model
from saharank.training import load_checkpoint, save_checkpoint

NIBABEL_DATA = Path(nib.__file__).parent / "tests" / "data"
NICOM_DATA = Path(nib.__file__).parent / "nicom" / "tests" / "data"


def run(*args):
    return subprocess.run([sys.executable, "-m", "saharank", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(0)
    net = build_model("unet", width=4, depth=2)
    return save_checkpoint(net, tmp_path_factory.mktemp("model") / "unet.safetensors",
                           dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.0,
                                canvas_px=128, slab_mm=5.0))


def series(d: Path, name: str, edit=None) -> Path:
    """A one-file series folder `d`/<stem> holding pydicom's test file `name` (optionally edited)."""
    s = d / Path(name).stem
    s.mkdir(parents=True)
    src = get_testdata_file(name, download=False)
    assert src is not None, f"{name} comes with pydicom or pydicom-data (pip install pydicom-data)"
    if edit is None: shutil.copy(src, s / name)
    else:
        ds = pydicom.dcmread(src)
        edit(ds)
        ds.save_as(s / name)
    return s


def mosaic(d: Path) -> Path:
    s = d / "siemens_mosaic"
    s.mkdir(parents=True)
    (s / "siemens_dwi_1000.dcm").write_bytes(gzip.decompress((NICOM_DATA / "siemens_dwi_1000.dcm.gz").read_bytes()))
    return s


def secondary_capture_labelled_ct(ds):
    ds.Modality = "CT"


REFUSED = {   # input -> (builder, fragment of the one error line)
    "MR_small.dcm (MR)": (lambda d: series(d, "MR_small.dcm"), "not a CT image (MR Image Storage): Modality MR"),
    "MR_small_bigendian.dcm (MR, big endian)": (lambda d: series(d, "MR_small_bigendian.dcm"), "Modality MR"),
    "MR2_UNCR.dcm (MR, pydicom-data)": (lambda d: series(d, "MR2_UNCR.dcm"), "Modality MR"),
    "siemens_dwi_1000 (MR mosaic, nibabel)": (mosaic, "Siemens mosaic (ImageType MOSAIC"),
    "SC_rgb.dcm (secondary capture)": (lambda d: series(d, "SC_rgb.dcm"), "secondary capture"),
    "SC_rgb.dcm labelled CT": (lambda d: series(d, "SC_rgb.dcm", secondary_capture_labelled_ct), "secondary capture"),
    "US1_UNCR.dcm (ultrasound)": (lambda d: series(d, "US1_UNCR.dcm"), "Modality US"),
    "bad_sequence.dcm (CT, JPEG Lossless, no decoder)": (lambda d: series(d, "bad_sequence.dcm"),
                                                         "no decoder installed for the pixel data's Transfer Syntax "
                                                         "JPEG Lossless"),
    "anatomical.nii (SPM MR, nibabel)": (lambda d: NIBABEL_DATA / "anatomical.nii",
                                         "intensities cannot be HU of a head CT"),
    "standard.nii.gz (phantom, nibabel)": (lambda d: NIBABEL_DATA / "standard.nii.gz",
                                           "intensities cannot be HU of a head CT"),
    "example4d.nii.gz (4-D fMRI, nibabel)": (lambda d: NIBABEL_DATA / "example4d.nii.gz", "4-D"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_predict_refuses_what_is_not_a_head_ct(case, tmp_path, model):
    build, fragment = REFUSED[case]
    if case.startswith("bad_sequence"):
        from pydicom.pixels.decoders.base import get_decoder
        if get_decoder("1.2.840.10008.1.2.4.70").is_available: pytest.skip("a JPEG Lossless decoder is installed here")
    path = build(tmp_path / "in")
    out = tmp_path / "out"
    r = run("predict", path, "--model", model, "--out", out, "--device", "cpu")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("saharank: error: ")]
    assert len(errors) == 1 and all(l.startswith("saharank: warning: ") for l in lines if l not in errors), r.stderr
    shown = errors[0][len("saharank: error: "):]
    assert path.name in shown.split(":")[0] or shown.startswith(str(path)), shown   # FILE first
    assert fragment in shown, shown
    assert not out.exists() and not list(tmp_path.glob(".tmp*")) and r.stdout == ""


def dcm2niix_style(path: Path, hu: np.ndarray, affine: np.ndarray):
    """A NIfTI as converters store CT: unsigned stored values with scl_slope 1 and scl_inter -1024."""
    img = nib.Nifti1Image(np.clip(hu + 1024, 0, 65535).astype(np.uint16), affine)
    img.header.set_slope_inter(1.0, -1024.0)
    nib.save(img, path)


def test_predict_accepts_real_ct_with_the_right_warnings(tmp_path, model):
    from saharank.dicom import read_dicom_series
    scans = tmp_path / "scans"
    expected = {}  # scan name -> fragments of its warnings, a line each ((): none)
    # pydicom's CT_small.dcm is a contrast study (ISOVUE300/100, IV) of a PatientAge 000Y: outside the intended use,
    # twice
    for name, warn in (("693_UNCR.dcm", ()), ("693_J2KR.dcm", ()),
                       ("CT_small.dcm",
                        ("contrast-enhanced CT (ContrastBolusAgent 'ISOVUE300/100'",
                         "a patient of 0.0 years (PatientAge 000Y)")),
                       ("693_UNCI.dcm", ("LossyImageCompression 01 (ratio 339:1",)),
                       ("693_J2KI.dcm", ("LossyImageCompression 01",))):
        series(scans, name)
        expected[Path(name).stem] = warn
    def no_rescale(ds):
        del ds.RescaleSlope, ds.RescaleIntercept
        ds.PixelRepresentation = 1
    series(tmp_path / "x", "693_UNCR.dcm", no_rescale).rename(scans / "693_no_rescale")
    expected["693_no_rescale"] = ("lack RescaleSlope and/or RescaleIntercept: slope 1 / intercept 0 assumed",)
    hu, aff, _ = read_dicom_series(scans / "693_UNCR")
    dcm2niix_style(scans / "cq500_dcm2niix.nii.gz", hu, aff)
    expected["cq500_dcm2niix"] = ()
    r = run("predict", scans, "--model", model, "--out", tmp_path / "out", "--device", "cpu")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    warnings = [l for l in r.stderr.splitlines() if l.strip()]
    assert all(l.startswith("saharank: warning: ") for l in warnings), r.stderr
    rows = {Path(x["scan"]).name.replace(".nii.gz", ""): x
            for x in csv.DictReader((tmp_path / "out" / "volumes.csv").open())}
    assert set(rows) == set(expected), rows.keys()
    for scan, warn in expected.items():
        mine = [l for l in warnings if f"/{scan}" in l]
        assert len(mine) == len(warn) and all(w in m for w, m in zip(warn, mine)), (scan, warnings)    # one line each
        caveats = json.loads((tmp_path / "out" / scan / "report.json").read_text())["caveats"]
        assert len(caveats) == len(warn) and all(w in c for w, c in zip(warn, caveats)), caveats
        assert all(w in rows[scan]["warnings"] for w in warn) and (rows[scan]["warnings"] == "") == (warn == ())
        assert rows[scan]["status"] == "ok" and rows[scan]["tilt_correction"] == ""
        assert (tmp_path / "out" / scan / "mask.nii.gz").exists()
    assert "tilt corrected" not in r.stdout
    # the dcm2niix-style NIfTI holds the same HU as the DICOM slice it came from, so it gets the same mask
    m1 = nib.load(tmp_path / "out" / "693_UNCR" / "mask.nii.gz").get_fdata()
    m2 = nib.load(tmp_path / "out" / "cq500_dcm2niix" / "mask.nii.gz").get_fdata()
    assert np.array_equal(m1, m2)


def test_assume_ct_turns_the_refusal_into_a_warning(tmp_path, model):
    r = run("predict", NIBABEL_DATA / "anatomical.nii", "--model", model, "--out", tmp_path / "o",
            "--device", "cpu", "--assume-ct")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("saharank: warning: ") and "anatomical.nii" in lines[0], r.stderr
    assert "intensities cannot be HU of a head CT" in lines[0]
    assert "cannot be HU" in list(csv.DictReader((tmp_path / "o" / "volumes.csv").open()))[0]["warnings"]


def head(shape=(40, 36, 6)):
    rng = np.random.default_rng(0)
    hu = np.full(shape, -1000.0)
    hu[3:-3, 3:-3] = 800
    hu[5:-5, 5:-5] = rng.normal(30, 5, (shape[0] - 10, shape[1] - 10, shape[2]))
    return np.rint(hu)


def test_tilt_correction_reported_only_when_it_happened(tmp_path, model):
    aff = np.diag([2.0, 2.0, 5.0, 1.0])
    tilted = aff.copy()
    tilted[1, 2] = 5.0 * np.tan(np.radians(12))
    write_dicom_series(head(), aff, tmp_path / "straight")
    write_dicom_series(head(), tilted, tmp_path / "tilted")
    for name, corrected in (("straight", False), ("tilted", True)):
        out = tmp_path / f"out-{name}"
        r = run("predict", tmp_path / name, "--model", model, "--out", out, "--device", "cpu", "--tilt", "correct")
        assert r.returncode == 0, r.stderr
        assert ("(tilt corrected)" in r.stdout) == corrected, r.stdout
        rep = json.loads((out / "report.json").read_text())
        assert ((rep["tilt_correction"] is not None) == corrected
                and (rep["tilt_correction"] or "resampled").startswith("resampled"))
        assert ("tilt corrected" in rep["qc_title"]) == corrected, rep["qc_title"]
        for f in ("report.csv", "volumes.csv"):
            row = list(csv.DictReader((out / f).open()))[0]
            assert (row["tilt_correction"] != "") == corrected, (f, row)


def test_a_model_without_its_canvas_is_read_as_before_with_a_warning(tmp_path, model):
    """A checkpoint that does not record the slice size it was trained on (`canvas_px`, made before it was written)
    is read as it was (slices padded to a multiple of 16 pixels) with one warning line saying so; the same weights
    with their canvas give no warning, nor does a model that records none (`canvas_px` None: trained on a dataset's
    own slice sizes); report.json names the canvas."""
    net = load_checkpoint(build_model("unet", width=4, depth=2), model)[0]
    desc = dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.0)
    old = save_checkpoint(net, tmp_path / "old.safetensors", desc)
    dataset = save_checkpoint(net, tmp_path / "dataset.safetensors", desc | dict(canvas_px=None, slab_mm=None))
    s = series(tmp_path / "in", "693_UNCR.dcm")
    warned = {}
    for name, ck in (("old", old), ("new", model), ("dataset", dataset)):
        r = run("predict", s, "--model", ck, "--out", tmp_path / name, "--device", "cpu")
        assert r.returncode == 0, r.stderr
        warned[name] = [l for l in r.stderr.splitlines() if l.startswith("saharank: warning:")]
        report = json.loads((tmp_path / name / "report.json").read_text())
        assert report["model"]["canvas_px"] == (128 if name == "new" else None), report["model"]
    assert len(warned["old"]) == 1 and "does not record the slice size" in warned["old"][0], warned
    assert warned["new"] == warned["dataset"] == [], warned


def test_physics_qc_on_the_console_and_in_volumes_csv(tmp_path):
    """A model folder whose card records a training brain range that the scan's brain (the real CQ500 slice, about
    30 HU) lies outside: the QC flag is a warning line and a `qc_flags` entry; the blood and brain HU are printed."""
    from saharank.predict import MODEL_BASE, MODEL_CARD
    torch.manual_seed(0)
    net = build_model("unet", width=4, depth=2)
    folder = tmp_path / "sah-unet-test"
    save_checkpoint(net, folder / MODEL_BASE,
                    dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.0,
                         canvas_px=128, slab_mm=5.0))
    (folder / MODEL_CARD).write_text(json.dumps(dict(name="sah-unet-test",
                                                     qc=dict(brain_median_hu_range=[60.0, 70.0]))))
    s = series(tmp_path / "in", "693_UNCR.dcm")
    r = run("predict", s, "--model", folder, "--out", tmp_path / "o", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "brain median" in r.stdout and "QC FLAG" in r.stdout, r.stdout
    warn = [l for l in r.stderr.splitlines() if l.startswith("saharank: warning:")]
    assert len(warn) == 1 and "outside the training cohorts' 60-70 HU" in warn[0], r.stderr
    row = list(csv.DictReader((tmp_path / "o" / "volumes.csv").open()))[0]
    assert 20 < float(row["brain_median_hu"]) < 45 and "brain at a median" in row["qc_flags"], row
    qc = json.loads((tmp_path / "o" / "report.json").read_text())["qc"]
    assert qc["brain_range"] == [60.0, 70.0] and qc["flags"] == [f for f in row["qc_flags"].split(" | ") if f]


def test_predict_names_inputs_outside_the_intended_use_from_a_nifti(tmp_path):
    """A NIfTI has no headers: contrast is read from its physics (tissue at 130-300 HU inside the skull, away from
    bone), noise from the brain (above the model card's `qc.noise_hu_range`) and pixels coarser than the model's
    from the affine. Each is one warning line naming the
    scan, in volumes.csv (`warnings`, `qc_flags`) and report.json; the clean head gets none. The card states the
    intended use."""
    from saharank.cohort import phantom_anatomy
    from saharank.data import save_nifti
    from saharank.deploy import MODEL_INTENDED_USE
    ph = phantom_anatomy()
    folder = tmp_path / "models" / "sah-unet-tiny"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    save_checkpoint(build_model("unet", width=4, depth=2), folder / "base.safetensors",
                    dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.5,
                         canvas_px=128, slab_mm=5.0))
    (folder / "model_card.json").write_text(json.dumps(dict(name=folder.name, intended_use=MODEL_INTENDED_USE,
                                                            qc=dict(brain_median_hu_range=None,
                                                                    noise_hu_range=[0.0, 4.0]))))
    assert "non-contrast head CT" in MODEL_INTENDED_USE and "adults" in MODEL_INTENDED_USE
    scans = tmp_path / "scans"
    scans.mkdir()
    save_nifti(ph.hu, ph.affine, scans / "clean.nii.gz")
    enhanced = ph.hu.copy()
    enhanced[38:41, 45:48, 25:45] = 200.          # an enhancing vessel deep in the brain
    save_nifti(enhanced, ph.affine, scans / "enhanced.nii.gz")
    noisy = ph.hu + np.random.default_rng(0).normal(0, 10, ph.hu.shape).astype(np.float32)
    save_nifti(noisy, ph.affine, scans / "noisy.nii.gz")
    coarse = phantom_anatomy(shape=(54, 64, 72), spacing=(3.75, 3.75, 2.5))    # the head at 1.5x the model's pixel
    save_nifti(coarse.hu, coarse.affine, scans / "coarse.nii.gz")
    r = run("predict", scans, "--model", folder, "--out", tmp_path / "out", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    rows = {Path(x["scan"]).name: x for x in csv.DictReader((tmp_path / "out" / "volumes.csv").open())}
    assert ([l for l in lines if "clean" in l] == []
            and rows["clean.nii.gz"]["warnings"] == rows["clean.nii.gz"]["qc_flags"] == "")
    enh = [l for l in lines if "enhanced.nii.gz" in l]
    assert len(enh) == 1 and "contrast enhancement suspected" in enh[0] and "outside the intended use" in enh[0], lines
    assert "contrast enhancement suspected" in rows["enhanced.nii.gz"]["warnings"]
    assert json.loads((tmp_path / "out" / "enhanced" / "report.json").read_text())["caveats"][0].startswith(
        "contrast enhancement suspected")
    noise = [l for l in lines if "noisy.nii.gz" in l and "noise SD" in l]
    assert len(noise) == 1 and "above the 4 HU the training saw" in noise[0], lines
    assert "noise SD" in rows["noisy.nii.gz"]["qc_flags"]
    assert json.loads((tmp_path / "out" / "noisy" / "report.json").read_text())["qc"]["noise_sd_hu"] > 4
    pixel = [l for l in lines if "coarse.nii.gz" in l]
    assert len(pixel) == 1 and "pixels of 3.75 mm, coarser than the 2.5 mm the model reads" in pixel[0], lines
    assert "coarser than the 2.5 mm" in rows["coarse.nii.gz"]["warnings"]
    assert [l for l in lines if "noisy.nii.gz" in l and "coarser" in l] == []        # 2.5 mm pixels: none
