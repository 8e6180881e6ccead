"""Bad input through the library and the CLI: each gets a clear error naming the file and the problem,
a non-zero exit from `saharank`, and nothing half-written."""
import gzip, os, pickle, subprocess, sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from saharank.data import load_case, load_nifti, mask_volume_ml, save_nifti, write_case
from saharank.models import build_model
from saharank.training import load_checkpoint, save_checkpoint

AFF = np.diag([2.0, 2.0, 5.0, 1.0])


def cli(*args):
    return subprocess.run([sys.executable, "-m", "saharank", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    torch.manual_seed(0)
    net = build_model("unet", width=4, depth=2)
    return save_checkpoint(net, d / "unet.safetensors",
                           dict(model="unet", kwargs=dict(width=4, depth=2), window=[40, 120], pixel_mm=2.0,
                                canvas_px=128, slab_mm=5.0))


def good_volume():
    "A head-like CT (air around, a skull, soft tissue near 30 HU): `saharank predict` refuses what cannot be one."
    rng = np.random.default_rng(0)
    v = np.full((32, 32, 4), -1000, np.float32)
    v[3:29, 3:29] = 800
    v[5:27, 5:27] = rng.normal(30, 5, (22, 22, 4))
    return v


def bad_files(d: Path):
    """name -> (path, expected message fragment)."""
    d.mkdir(parents=True, exist_ok=True)
    good = save_nifti(good_volume(), AFF, d / "good.nii.gz", dtype=np.int16)
    raw = good.read_bytes()
    out = {}
    (d / "truncated.nii.gz").write_bytes(raw[: len(raw) // 2])
    out["truncated"] = (d / "truncated.nii.gz", "truncated")
    (d / "corrupt.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(200))
    out["corrupt"] = (d / "corrupt.nii.gz", "corrupt")
    v = good_volume()
    v[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(v, AFF), d / "nan.nii.gz")
    out["nan"] = (d / "nan.nii.gz", "NaN")
    v = good_volume()
    v[0, 0, 0] = np.inf
    nib.save(nib.Nifti1Image(v, AFF), d / "inf.nii.gz")
    out["inf"] = (d / "inf.nii.gz", "infinite")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4, 3), np.float32), AFF), d / "four_d.nii.gz")
    out["4-D"] = (d / "four_d.nii.gz", "4-D")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 4), np.complex64), AFF), d / "complex.nii.gz")
    out["dtype"] = (d / "complex.nii.gz", "not a real number type")
    hdr = nib.load(good).header.copy()
    hdr["srow_y"] = [0, 0, 0, 0]
    hdr["pixdim"][2] = 0
    body = gzip.decompress(raw)
    (d / "zero_spacing.nii.gz").write_bytes(gzip.compress(hdr.binaryblock + body[len(hdr.binaryblock):]))
    out["zero spacing"] = (d / "zero_spacing.nii.gz", "spacing")
    dcm = d / "unreadable_dicom"
    dcm.mkdir(exist_ok=True)
    (dcm / "IM0001.dcm").write_bytes(os.urandom(300))
    out["unreadable DICOM"] = (dcm, "IM0001.dcm")
    (d / "scan.txt").write_text("not an image")
    out["not an image"] = (d / "scan.txt", "not a NIfTI file")
    out["missing"] = (d / "nowhere.nii.gz", "nowhere.nii.gz")
    return out


CASES = ["truncated", "corrupt", "nan", "inf", "4-D", "dtype", "zero spacing", "not an image", "missing"]


@pytest.mark.parametrize("case", CASES)
def test_library_refuses(case, tmp_path):
    path, msg = bad_files(tmp_path)[case]
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        load_nifti(path) if case != "not an image" else __import__("saharank.predict", fromlist=["read_ct"]).read_ct(
            path)
    assert path.name in str(e.value) and msg in str(e.value)


@pytest.mark.parametrize("case", CASES + ["unreadable DICOM"])
def test_cli_predict_refuses(case, tmp_path, ckpt):
    path, msg = bad_files(tmp_path / "in")[case]
    out = tmp_path / "out"
    r = cli("predict", path, "--model", ckpt, "--out", out, "--device", "cpu")
    assert r.returncode == 2, r.stderr
    line = [l for l in r.stderr.splitlines() if l.startswith("saharank: error:")]
    assert len(line) == 1 and path.name in line[0] and msg in line[0], r.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.rglob(".tmp*")]


def test_cli_predict_good_input_writes_everything(tmp_path, ckpt):
    path = save_nifti(good_volume(), AFF, tmp_path / "good.nii.gz", dtype=np.int16)
    r = cli("predict", path, "--model", ckpt, "--out", tmp_path / "out", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mask.nii.gz", "qc.png", "report.csv",
                                                                    "report.json", "volumes.csv"]


def test_cohort_mismatches_and_masks(tmp_path):
    img, mask = good_volume().astype(np.int16), np.zeros((32, 32, 4), np.uint8)
    write_case(tmp_path, "ok", img, mask, AFF)
    assert mask_volume_ml(mask, (2, 2, 5)) == 0.0  # an empty mask is 0 mL, not an error
    with pytest.raises(ValueError, match="non-binary|binary"):
        write_case(tmp_path, "two", img, mask + 2, AFF)
    with pytest.raises(ValueError, match="binary|negative"):
        write_case(tmp_path, "neg", img, mask.astype(np.int16) - 1, AFF)
    assert not (tmp_path / "images" / "two.nii.gz").exists() and not (tmp_path / "images" / "neg.nii.gz").exists()
    # shape mismatch between image and mask on disk
    save_nifti(np.zeros((32, 32, 3), np.uint8), AFF, tmp_path / "masks" / "ok.nii.gz", dtype=np.uint8)
    with pytest.raises(ValueError) as e:
        load_case(tmp_path, "ok")
    assert "ok.nii.gz" in str(e.value) and "shape" in str(e.value)
    # affine mismatch
    save_nifti(mask, np.diag([3.0, 2.0, 5.0, 1.0]), tmp_path / "masks" / "ok.nii.gz", dtype=np.uint8)
    with pytest.raises(ValueError, match="affine"):
        load_case(tmp_path, "ok")
    # a non-binary mask written by someone else
    save_nifti(mask + 3, AFF, tmp_path / "masks" / "ok.nii.gz", dtype=np.uint8)
    with pytest.raises(ValueError) as e:
        load_case(tmp_path, "ok")
    assert "ok.nii.gz" in str(e.value)


class Payload:
    """Unpickling this object would create a file: proof that code ran."""
    def __init__(self, target): self.target = target
    def __reduce__(self): return (Path.touch, (Path(self.target),))


def test_malicious_pickle_is_refused(tmp_path, ckpt):
    flag = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Payload(flag)))
    evil.with_suffix(".safetensors.json").write_text(Path(str(ckpt) + ".json").read_text())
    with pytest.raises(ValueError, match="evil.safetensors"):
        load_checkpoint(build_model("unet", width=4, depth=2), evil)
    r = cli("predict", save_nifti(good_volume(), AFF, tmp_path / "g.nii.gz", dtype=np.int16), "--model", evil,
            "--out", tmp_path / "o")
    assert r.returncode == 2 and "evil.safetensors" in r.stderr
    # the same payload as a torch .pt file: torch.load(weights_only=True) refuses it too
    pt = tmp_path / "evil.pt"
    pt.write_bytes(pickle.dumps({"x": Payload(flag)}))
    with pytest.raises(Exception):
        torch.load(pt, weights_only=True)
    assert not flag.exists()
