"""The shared pieces: the phantom generator's determinism and truth, PNG encoding, morphology, discovery."""

import json
import os
import struct
import zlib

import numpy as np

from common import bmd, imaging, morph, niftio
from common.phantom import make_phantom, write_nifti


def test_phantom_is_deterministic_and_truthful():
    a = make_phantom(seed=3, spacing=(2.0, 2.0, 2.0), l1_trabecular_hu=150)
    b = make_phantom(seed=3, spacing=(2.0, 2.0, 2.0), l1_trabecular_hu=150)
    c = make_phantom(seed=4, spacing=(2.0, 2.0, 2.0), l1_trabecular_hu=150)
    assert np.array_equal(a.volume, b.volume) and np.array_equal(a.labels, b.labels) and a.truth == b.truth
    assert not np.array_equal(a.volume, c.volume)
    t = a.truth
    assert t["l1_trabecular_hu"] == 150 and t["pickhardt_band"] == "indeterminate"
    assert {"T12", "L1", "L2"} <= set(t["levels_present"]) and t["labels"]["L1"] == bmd.L1_CODE == 20
    assert "T12" in t["rib_levels"] and "L1" not in t["rib_levels"]
    cal = t["calibration"]
    for r in cal["rods"]:
        assert r["hu"] == cal["intercept_hu"] + cal["slope_hu_per_mg_cm3"] * r["concentration_mg_cm3"]
    assert t["l1_bmd_mg_cm3"] == (150 - cal["intercept_hu"]) / cal["slope_hu_per_mg_cm3"]
    # the core of L1 (well inside) has the chosen HU on average; the shell is bright
    l1 = a.labels == 20
    z = a.affine[2, 3] + 2.0 * np.arange(l1.shape[2])
    v = t["vertebrae"]["L1"]
    central = np.abs(z - v["center_mm"][2]) < v["height_mm"] / 4  # away from the endplates
    core = morph.erode_inplane(l1, (2.0, 2.0), 6.0) & central[None, None, :]
    assert abs(a.volume[core].mean() - 150) < 5
    assert a.volume[l1 & ~morph.erode_inplane(l1, (2.0, 2.0), 2.0)].mean() > 250
    assert np.allclose(a.affine[:3, :3], np.diag([2.0, 2.0, 2.0]))


def test_thresholds():
    assert [bmd.pickhardt_band(h) for h in (90, 110, 110.1, 160, 160.1)] == [
        "osteoporosis_likely", "osteoporosis_likely", "indeterminate", "indeterminate", "osteoporosis_unlikely"]
    assert [bmd.qct_category(v) for v in (79.9, 80, 120, 120.1)] == [
        "osteoporosis", "osteopenia", "osteopenia", "normal"]


def test_png_writer_round_trip():
    rgb = (np.arange(5 * 7 * 3) % 256).astype(np.uint8).reshape(5, 7, 3)
    png = imaging.png_bytes(rgb)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (7, 5)
    idat_len = struct.unpack(">I", png[33:37])[0]
    raw = zlib.decompress(png[41:41 + idat_len])
    rows = np.frombuffer(raw, np.uint8).reshape(5, 1 + 7 * 3)
    assert (rows[:, 0] == 0).all() and np.array_equal(rows[:, 1:].reshape(5, 7, 3), rgb)


def test_label2d_numpy_fallback_matches(monkeypatch):
    rng = np.random.default_rng(0)
    m = rng.random((40, 30)) > 0.6
    lab, n = morph.label2d(m)
    import builtins

    real_import = builtins.__import__

    def no_scipy(name, *a, **k):
        if name.startswith("scipy"):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    lab2, n2 = morph.label2d(m)
    assert n == n2
    # the same partition (label numbers may differ)
    pairs = set(zip(lab[m].tolist(), lab2[m].tolist()))
    assert len(pairs) == n


def test_find_volumes_rules(tmp_path):
    d = tmp_path / "a" / "nifti"
    os.makedirs(d)
    vol = np.zeros((16, 16, 12), np.int16)
    for name in ("S_2", "S_2_Tilt_1", "S_3", "S_3_seg", "S_4_Eq_1"):
        write_nifti(str(d / f"{name}.nii.gz"), vol, np.eye(4))
    write_nifti(str(d / "S_5.nii.gz"), np.zeros((16, 16, 3), np.int16), np.eye(4))
    write_nifti(str(d / "S_6.nii.gz"), vol, np.eye(4))
    (d / "S_6.json").write_text(json.dumps({"Modality": "MR"}))
    (d / "S_2.json").write_text(json.dumps({"Modality": "CT", "PatientAge": "046Y", "PatientSex": "F"}))
    volumes, skipped = niftio.find_volumes(str(tmp_path))
    assert [v.rel for v in volumes] == ["a/nifti/S_2_Tilt_1.nii.gz", "a/nifti/S_3.nii.gz", "a/nifti/S_4_Eq_1.nii.gz"]
    assert volumes[0].sidecar.endswith("S_2.json") and volumes[0].derived == "Tilt"
    assert niftio.patient_characteristics(volumes[0]) == {"age_years": 46, "sex": "F", "source": "sidecar"}
    reasons = dict(skipped)
    assert "superseded" in reasons["a/nifti/S_2.nii.gz"]
    assert "too few slices" in reasons["a/nifti/S_5.nii.gz"]
    assert "not CT" in reasons["a/nifti/S_6.nii.gz"]
