"""The installed CLI as users run it: `python -m saharank ...` in a fresh interpreter (so a name missing from
an exported module fails here even when a notebook's test cell imported it), on a NIfTI file, a DICOM
series folder, the real one-slice CQ500 DICOM, a gantry-tilted series and a folder of scans; bad inputs get
exit 2, one line naming the file, and nothing written. Also the linter for undefined names."""
import csv, json, shutil, subprocess, sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch

from saharank.data import load_nifti, save_nifti
from saharank.dicom import write_dicom_series
from saharank.models import build_model
from saharank.predict import MODEL_ADAPTER, MODEL_BASE, MODEL_CARD
from saharank.training import save_checkpoint

AFF = np.diag([0.9, 0.9, 5.0, 1.0])
ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "saharank", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def ok(r):
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return r


def refused(r, path, fragment, out):
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("saharank: error:"), r.stderr
    assert Path(path).name in lines[0] and fragment in lines[0], lines[0]
    assert not Path(out).exists()
    assert not list(Path(out).parent.glob(".tmp*"))


def ct_volume(shape=(48, 44, 6)):
    """A head-like CT (air around, a skull, soft tissue near 35 HU, a 70 HU region): `saharank predict` refuses
    anything else."""
    rng = np.random.default_rng(0)
    hu = np.full(shape, -1000, np.float32)
    hu[3:-3, 3:-3] = 800
    hu[5:-5, 5:-5] = rng.normal(35, 6, (shape[0] - 10, shape[1] - 10, shape[2]))
    hu[10:20, 12:22, 2:4] = 70
    return np.rint(hu)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A deployable model folder (base + CP-LoRA adapter + card), as `reproduce` writes one, and its base
    checkpoint."""
    from saharank.adapters import add_adapters, save_adapters
    d = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    net = build_model("unet", width=4, depth=2)
    desc = dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=1.8,
                canvas_px=128, slab_mm=5.0)
    ckpt = save_checkpoint(net, d / "plain.safetensors", desc)
    folder = d / "sah-unet-test"
    save_checkpoint(net, folder / MODEL_BASE, desc)
    add_adapters(net, "cp-lora", 2)
    save_adapters(net, folder / MODEL_ADAPTER)
    (folder / MODEL_CARD).write_text(json.dumps(dict(name="sah-unet-test", intended_use="research only")))
    return dict(folder=folder, ckpt=ckpt)


def test_module_entry_point_and_version():
    r = ok(run("--version"))
    assert r.stdout.startswith("saharank ")


def test_predict_nifti_dicom_series_and_same_mask(tmp_path, model):
    hu = ct_volume()
    nii = save_nifti(hu, AFF, tmp_path / "scan.nii.gz", dtype=np.int16)
    series = tmp_path / "series"
    write_dicom_series(hu, AFF, series)
    for src, out in ((nii, tmp_path / "out-nii"), (series, tmp_path / "out-dcm")):
        r = ok(run("predict", src, "--model", model["folder"], "--out", out, "--device", "cpu"))
        assert "mL" in r.stdout
        assert sorted(p.name for p in out.iterdir()) == ["mask.nii.gz", "qc.png", "report.csv",
                                                         "report.json", "volumes.csv"]
        rep = json.loads((out / "report.json").read_text())
        assert rep["model"]["card"]["name"] == "sah-unet-test" and rep["adapter"]["method"] == "cp-lora"
    m1, a1 = load_nifti(tmp_path / "out-nii" / "mask.nii.gz")
    m2, a2 = load_nifti(tmp_path / "out-dcm" / "mask.nii.gz")
    assert m1.shape == hu.shape and np.array_equal(m1, m2) and np.allclose(a1, a2, atol=1e-4)
    assert json.loads((tmp_path / "out-dcm" / "report.json").read_text())["input_kind"] == "dicom"


def test_predict_real_one_slice_cq500(tmp_path, model):
    from pydicom.data import get_testdata_file
    d = tmp_path / "cq500"
    d.mkdir()
    shutil.copy(get_testdata_file("693_UNCI.dcm", download=False), d / "693_UNCI.dcm")
    out = tmp_path / "out"
    ok(run("predict", d, "--model", model["ckpt"], "--out", out, "--device", "cpu"))
    mask, aff = load_nifti(out / "mask.nii.gz")
    assert mask.shape == (512, 512, 1)
    rep = json.loads((out / "report.json").read_text())
    assert rep["shape"] == [512, 512, 1] and rep["spacing_mm"][2] == 5.0
    assert list(csv.DictReader((out / "volumes.csv").open()))[0]["status"] == "ok"


def test_predict_tilted_series_refused_by_default_corrected_on_request(tmp_path, model):
    tilted = np.array(AFF)
    tilted[1, 2] = 5.0 * np.tan(np.radians(12))
    d = tmp_path / "tilted"
    write_dicom_series(ct_volume(), tilted, d)
    refused(run("predict", d, "--model", model["ckpt"], "--out", tmp_path / "o1", "--device", "cpu"), d,
            "gantry tilt", tmp_path / "o1")
    r = ok(run("predict", d, "--model", model["ckpt"], "--out", tmp_path / "o2", "--device",
               "cpu", "--tilt", "correct"))
    assert "tilt corrected" in r.stdout
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["tilt_correction"].startswith("resampled")


def bad_inputs(d: Path) -> dict:
    """name -> (path, message fragment): the inputs whose spacing or size cannot be trusted."""
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    img = nib.Nifti1Image(ct_volume().astype(np.int16), None)
    img.header["pixdim"][1:4] = 0
    img.header.set_qform(None, code=0)
    img.header.set_sform(None, code=0)
    nib.save(img, d / "pixdim0.nii.gz")
    out["pixdim 0"] = (d / "pixdim0.nii.gz", "voxel spacing")
    img = nib.Nifti1Image(ct_volume(), None)
    img.header["pixdim"][1:4] = [np.nan, 1, 1]
    img.header.set_qform(None, code=0)
    img.header.set_sform(None, code=0)
    nib.save(img, d / "nan_pixdim.nii")
    assert np.isnan(nib.Nifti1Header.from_fileobj(open(d / "nan_pixdim.nii", "rb"), check=False)["pixdim"][1])
    out["pixdim NaN"] = (d / "nan_pixdim.nii", "voxel spacing")
    big = nib.Nifti1Header()
    big.set_data_shape((30000, 30000, 30000))
    big.set_data_dtype(np.int16)
    big.set_zooms((1, 1, 1))
    (d / "huge.nii").write_bytes(big.binaryblock + b"\0" * 1004)
    out["huge .nii"] = (d / "huge.nii", "promises")
    import gzip
    (d / "huge.nii.gz").write_bytes(gzip.compress(big.binaryblock + b"\0" * 1004))
    out["huge .nii.gz"] = (d / "huge.nii.gz", "promises")
    for tag, frag in (("PixelSpacing", "PixelSpacing"), ("ImagePositionPatient", "ImagePositionPatient"),
                      ("ImageOrientationPatient", "ImageOrientationPatient")):
        s = d / f"no_{tag}"
        files = write_dicom_series(ct_volume(), AFF, s)
        for f in files:
            ds = pydicom.dcmread(f)
            delattr(ds, tag)
            ds.save_as(f)
        out[f"DICOM without {tag}"] = (s, frag)
    return out


BAD = ["pixdim 0", "pixdim NaN", "huge .nii", "huge .nii.gz", "DICOM without PixelSpacing",
       "DICOM without ImagePositionPatient",
       "DICOM without ImageOrientationPatient"]


@pytest.mark.parametrize("case", BAD)
def test_predict_refuses_untrustworthy_input(case, tmp_path, model):
    path, frag = bad_inputs(tmp_path / "in")[case]
    out = tmp_path / "out"
    refused(run("predict", path, "--model", model["folder"], "--out", out, "--device", "cpu"), path, frag, out)


def test_predict_batch_folder_reports_failures_and_goes_on(tmp_path, model):
    scans = tmp_path / "scans"
    scans.mkdir()
    hu = ct_volume()
    save_nifti(hu, AFF, scans / "p1.nii.gz", dtype=np.int16)
    write_dicom_series(hu, AFF, scans / "p2")
    bad = bad_inputs(tmp_path / "bad")["pixdim 0"][0]
    shutil.copy(bad, scans / "p3.nii.gz")
    out = tmp_path / "out"
    r = run("predict", scans, "--model", model["folder"], "--out", out, "--device", "cpu")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "p3.nii.gz" in r.stderr and "1 of 3 scans failed" in r.stderr
    rows = list(csv.DictReader((out / "volumes.csv").open()))
    assert [(Path(x["scan"]).name, x["status"]) for x in rows] == [("p1.nii.gz", "ok"), ("p2", "ok"),
                                                                   ("p3.nii.gz", "error")]
    assert {"scan", "volume_ml", "slices", "model", "seconds"} <= set(rows[0])
    assert rows[0]["volume_ml"] == rows[1]["volume_ml"]              # the same CT as NIfTI and as DICOM
    assert ((out / "p1" / "mask.nii.gz").exists() and (out / "p2" / "mask.nii.gz").exists()
            and not (out / "p3").exists())
    # several inputs on the command line, all good: exit 0
    ok(run("predict", scans / "p1.nii.gz", scans / "p2", "--model", model["folder"], "--out",
           tmp_path / "two", "--device", "cpu"))
    assert len(list(csv.DictReader((tmp_path / "two" / "volumes.csv").open()))) == 2


def test_package_has_no_undefined_names_or_unused_imports():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists(): pytest.skip("ruff is not installed (pip install -e .[dev])")
    r = subprocess.run([ruff, "check", "--select", "F", "--output-format", "concise", str(ROOT / "saharank")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
