"""The intracranial space and the cohort's anatomy on a real head CT (Cranium, InVesalius examples): what a synthetic
volume cannot show. Needs the cached CT (`saharank reproduce` fetches it); skipped without it, except where
SAHARANK_REAL_HEADS=1 (CI sets it after its smoke run), where a missing CT fails."""
import os

import numpy as np
import pytest

from saharank.data import intracranial_space, voxel_spacing


@pytest.fixture(scope="module")
def cranium():
    from saharank.cranium import load_cranium
    try:
        return load_cranium(allow_download=False)[:2]
    except Exception as e:
        if os.environ.get("SAHARANK_REAL_HEADS") == "1": pytest.fail(f"the Cranium CT is not cached: {e}")
        pytest.skip(f"the Cranium CT is not cached (run `saharank reproduce --profile smoke` once): {e}")


def test_intracranial_space_of_a_real_head(cranium):
    """Adult intracranial volume (1200-1700 mL; 1100-1800 allowed), under 1 mL of bone inside, nothing below the foramen magnum
    (every slice of the space from its widest down is at least 12 cm2, and the slice under its lowest, where the head
    goes on, is narrower), and the cisterna magna in it: CSF (<= 15 HU) behind the brainstem in its lowest 15 mm."""
    hu, affine = cranium
    sp = np.asarray(voxel_spacing(affine))
    space = intracranial_space(hu, affine)
    ml = space.sum() * sp.prod() / 1000
    assert 1100 < ml < 1800, ml
    assert (space & (hu > 300)).sum() * sp.prod() / 1000 < 1.0       # bone: only what a slice encloses (calcifications)
    area = space.sum((0, 1)) * sp[0] * sp[1] / 100
    z = np.flatnonzero(area > 0)
    down = -1 if affine[2, 2] > 0 else 1
    low = z[0] if down == -1 else z[-1]
    widest = int(np.argmax(area))
    between = range(low, widest + 1) if down == -1 else range(widest, low + 1)
    assert all(area[k] >= 12 for k in between), area[list(between)]
    low_mm = 15 / sp[2]
    bottom = [k for k in z if abs(k - low) <= low_mm]
    centre_y = np.argwhere(space[:, :, bottom].any(2))[:, 1].mean()
    posterior = np.zeros(space.shape, bool)
    ys = np.arange(hu.shape[1])
    behind = ys < centre_y if (affine[1, 1] > 0) else ys > centre_y       # RAS: posterior is low world y
    posterior[np.ix_(np.arange(hu.shape[0]), np.flatnonzero(behind), bottom)] = True
    csf_ml = (space & posterior & (hu <= 15)).sum() * sp.prod() / 1000
    assert csf_ml > 1.0, csf_ml


def test_the_cohort_places_blood_only_inside_the_space(cranium):
    """The template's intracranial labels lie inside the space (the cohort's exact space), and a patient made from it
    has every annotated voxel inside its own space: the restriction never loses annotated blood."""
    from saharank.cohort import INTRACRANIAL_LABELS, cranium_anatomy, grid_for, make_patient
    anatomy = cranium_anatomy(allow_download=False)
    space = intracranial_space(anatomy.hu, anatomy.affine)
    assert not (np.isin(anatomy.labels, INTRACRANIAL_LABELS) & ~space).any()
    grid = grid_for(anatomy, 64)
    for seed, kw in ((0, dict(sah_ml=30.0, ivh=True)), (1, dict(sah_ml=8.0, fisher_grade=1, ivh=False)), (2, dict(lesions=("EDH", "SDH")))):
        hu, mask, ic = make_patient(anatomy, grid, np.random.default_rng(seed), intracranial=True, **kw)
        assert mask.any() and not (mask.astype(bool) & ~ic.astype(bool)).any(), seed
