"""bone-density on synthetic phantoms with known truth (true label maps given; the segmentation path is in
test_end_to_end.py)."""

import json
import os

import nibabel as nib
import numpy as np
import pytest

from conftest import BONE_DENSITY, SPACING, reorient, run_program
from common.phantom import write_nifti

LEVELS_HU = {90: "osteoporosis_likely", 140: "indeterminate", 200: "osteoporosis_unlikely"}
SEEDS = {90: 11, 140: 12, 200: 13}


@pytest.fixture(scope="module")
def measured(tmp_path_factory, phantom_factory):
    """One run over three phantoms (L1 at 90, 140, 200 HU), each with its true label map beside it."""
    root = tmp_path_factory.mktemp("bd")
    truths = {}
    for hu, seed in SEEDS.items():
        p = phantom_factory(seed=seed, spacing=SPACING, l1_trabecular_hu=hu)
        p.save(str(root / "in"), f"l1_{hu}")
        truths[hu] = p.truth
    proc = run_program(BONE_DENSITY, root / "in", root / "out")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((root / "out" / "summary.json").read_text())
    scans = {s["name"]: s for s in summary["scans"]}
    return scans, truths, root


@pytest.mark.parametrize("hu", sorted(LEVELS_HU))
def test_trabecular_hu_within_5_of_truth_and_band(measured, hu):
    scans, truths, _ = measured
    s = scans[f"l1_{hu}"]
    assert abs(s["l1_trabecular_hu"] - truths[hu]["l1_trabecular_hu"]) <= 5.0
    assert abs(s["l1_trabecular_hu_median"] - truths[hu]["l1_trabecular_hu"]) <= 5.0
    assert s["pickhardt_band"] == LEVELS_HU[hu] == truths[hu]["pickhardt_band"]
    assert s["roi_voxels"] >= 500
    assert s["l1_source"].startswith("label map")


@pytest.mark.parametrize("hu", sorted(LEVELS_HU))
def test_bmd_within_5_percent_of_rod_truth(measured, hu):
    scans, truths, _ = measured
    s, t = scans[f"l1_{hu}"], truths[hu]
    assert s["bmd_mg_cm3"] == pytest.approx(t["l1_bmd_mg_cm3"], rel=0.05)
    assert s["qct_category"] == t["qct_category"]
    cal = s["calibration"]
    assert cal["slope_hu_per_mg_cm3"] == pytest.approx(t["calibration"]["slope_hu_per_mg_cm3"], rel=0.03)
    assert [r["concentration_mg_cm3"] for r in cal["rods"]] == [0, 50, 100, 200]
    assert cal["r2"] > 0.999


def test_roi_lies_inside_l1_away_from_the_cortex(phantom_factory):
    import bone_density as BD

    p = phantom_factory(seed=SEEDS[140], spacing=SPACING, l1_trabecular_hu=140)
    l1 = p.labels == 20
    roi, info = BD.trabecular_roi(l1, SPACING)
    assert roi.sum() > 500 and not (roi & ~l1).any()
    assert info["cortex_margin_mm"] == 5.0 and not info["warnings"]
    # every ROI voxel is more than 4 mm (in plane) from the outside of L1
    from common.morph import erode_inplane

    assert not (roi & ~erode_inplane(l1, SPACING[:2], 4.0)).any()


def test_report_has_images_and_the_numbers(measured):
    scans, _, root = measured
    html = (root / "out" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3 * 5  # axial, sagittal, coronal, histogram, calibration
    for s in scans.values():
        assert f"{s['l1_trabecular_hu']:.1f}" in html


def test_flipped_and_reoriented_volumes_give_the_same_answer(tmp_path, phantom_factory, measured):
    scans, _, _ = measured
    p = phantom_factory(seed=SEEDS[140], spacing=SPACING, l1_trabecular_hu=140)
    os.makedirs(tmp_path / "in")
    for codes in (("L", "P", "S"), ("P", "S", "L"), ("R", "A", "I")):
        name = "".join(codes)
        v, aff = reorient(p.volume.astype(np.int16), p.affine, codes)
        lab, _ = reorient(p.labels, p.affine, codes)
        write_nifti(str(tmp_path / "in" / f"{name}.nii.gz"), v, aff)
        write_nifti(str(tmp_path / "in" / f"{name}_seg.nii.gz"), lab, aff)
        assert "".join(nib.aff2axcodes(aff)) == name
    proc = run_program(BONE_DENSITY, tmp_path / "in", tmp_path / "out", "--no-report")
    assert proc.returncode == 0, proc.stderr
    out = {s["name"]: s for s in json.loads((tmp_path / "out" / "summary.json").read_text())["scans"]}
    ref = scans["l1_140"]
    for name, s in out.items():
        assert s["orientation"] == name
        assert s["l1_trabecular_hu"] == pytest.approx(ref["l1_trabecular_hu"], abs=1e-6)
        assert s["roi_voxels"] == ref["roi_voxels"]
        assert s["bmd_mg_cm3"] == pytest.approx(ref["bmd_mg_cm3"], abs=1e-6)


def test_bodies_without_levels_are_named_from_the_ribs(tmp_path, phantom_factory, measured):
    """A label map that marks vertebral bodies (1) but not their levels: L1 is found below the last ribs."""
    scans, _, _ = measured
    p = phantom_factory(seed=SEEDS[90], spacing=SPACING, l1_trabecular_hu=90)
    os.makedirs(tmp_path / "in")
    os.makedirs(tmp_path / "labels")
    write_nifti(str(tmp_path / "in" / "ct.nii.gz"), p.volume.astype(np.int16), p.affine)
    write_nifti(str(tmp_path / "labels" / "ct_seg.nii.gz"), (p.labels > 0).astype(np.uint8), p.affine)
    proc = run_program(BONE_DENSITY, tmp_path / "in", tmp_path / "out", "--labels", tmp_path / "labels",
                       "--no-report")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["scans"][0]
    assert "ribs" in s["l1_source"] and s["labels_source"] == "provided (--labels)"
    assert s["l1_trabecular_hu"] == pytest.approx(scans["l1_90"]["l1_trabecular_hu"], abs=1e-6)
    assert [b["level"] for b in s["levels"]][:4] == p.truth["levels_present"][:4]


def test_staged_layout_tilt_copy_sidecar_and_dicom_characteristics(tmp_path, phantom_factory):
    """The data volume written by `deployctl volume stage`: the tilt-corrected copy is measured, the original
    and a 2D screenshot skipped; age/sex from the sidecar, or from the staged DICOM when -ba y dropped them."""
    pydicom = pytest.importorskip("pydicom")
    p = phantom_factory(seed=SEEDS[200], spacing=SPACING, l1_trabecular_hu=200)
    vol = tmp_path / "volume"
    a = vol / "P1" / "1.2.3" / "1.2.3.4" / "nifti"
    b = vol / "P2" / "1.2.5" / "1.2.5.6" / "nifti"
    for d in (a, b):
        os.makedirs(d)
    v16 = p.volume.astype(np.int16)
    write_nifti(str(a / "P1_2.nii.gz"), v16 - 500, p.affine)  # the uncorrected original: must not be used
    write_nifti(str(a / "P1_2_Tilt_1.nii.gz"), v16, p.affine)
    write_nifti(str(a / "P1_2_Tilt_1_seg.nii.gz"), p.labels, p.affine)
    (a / "P1_2.json").write_text(json.dumps({"Modality": "CT", "PatientAge": 46, "PatientSex": "F"}))
    write_nifti(str(a / "P1_99.nii.gz"), np.zeros((64, 32, 1), np.int16), np.eye(4))  # screenshot
    (a / "P1_99.json").write_text(json.dumps({"Modality": "OT"}))
    write_nifti(str(b / "P2_3.nii.gz"), v16, p.affine)
    write_nifti(str(b / "P2_3_seg.nii.gz"), p.labels, p.affine)
    (b / "P2_3.json").write_text(json.dumps({"Modality": "CT", "SeriesNumber": 3}))  # as with -ba y
    dcm = b.parent / "dicom"
    os.makedirs(dcm)
    ds = pydicom.Dataset()
    ds.PatientAge, ds.PatientSex, ds.PatientWeight = "061Y", "M", 80.5
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5"
    ds.save_as(str(dcm / "0001.dcm"), enforce_file_format=True)

    proc = run_program(BONE_DENSITY, vol, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    scans = {s["input"]: s for s in summary["scans"]}
    tilt = "P1/1.2.3/1.2.3.4/nifti/P1_2_Tilt_1.nii.gz"
    assert set(scans) == {tilt, "P2/1.2.5/1.2.5.6/nifti/P2_3.nii.gz"}
    assert abs(scans[tilt]["l1_trabecular_hu"] - 200) <= 5
    assert scans[tilt]["dcm2niix_copy"] == "gantry-tilt corrected"
    assert scans[tilt]["patient"] == {"age_years": 46, "sex": "F", "source": "sidecar"}
    p2 = scans["P2/1.2.5/1.2.5.6/nifti/P2_3.nii.gz"]["patient"]
    assert p2 == {"age_years": 61, "sex": "M", "weight_kg": 80.5, "source": "dicom"}
    skipped = {s["input"]: s["reason"] for s in summary["skipped"]}
    assert "superseded" in skipped["P1/1.2.3/1.2.3.4/nifti/P1_2.nii.gz"]
    assert "not CT" in skipped["P1/1.2.3/1.2.3.4/nifti/P1_99.nii.gz"]
    html = (tmp_path / "out" / "report.html").read_text()
    assert "age years 46" in html and "sex F" in html


def test_no_calibration_phantom(tmp_path):
    from common.phantom import make_phantom

    p = make_phantom(seed=21, spacing=(1.5, 1.5, 2.5), l1_trabecular_hu=120, calibration=False)
    p.save(str(tmp_path / "in"), "ct")
    proc = run_program(BONE_DENSITY, tmp_path / "in", tmp_path / "out", "--no-report")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["scans"][0]
    assert s["bmd_mg_cm3"] is None and s["qct_category"] is None
    assert "no calibration phantom" in s["calibration_note"]
    assert abs(s["l1_trabecular_hu"] - 120) <= 5 and s["pickhardt_band"] == "indeterminate"


def test_bad_input_fails_clearly(tmp_path, phantom_factory):
    proc = run_program(BONE_DENSITY, tmp_path / "missing", tmp_path / "out")
    assert proc.returncode == 2 and "input directory does not exist" in proc.stderr
    os.makedirs(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    proc = run_program(BONE_DENSITY, tmp_path / "empty", tmp_path / "out")
    assert proc.returncode == 2 and "no CT volumes" in proc.stderr
    proc = run_program(BONE_DENSITY, tmp_path / "empty", tmp_path / "out", "--rods", "0,x")
    assert proc.returncode == 2 and "--rods" in proc.stderr
    # a label map whose grid differs from the CT's; and a corrupt file: exit 1, both reported, others measured
    p = phantom_factory(seed=SEEDS[140], spacing=SPACING, l1_trabecular_hu=140)
    os.makedirs(tmp_path / "mixed")
    write_nifti(str(tmp_path / "mixed" / "a.nii.gz"), p.volume.astype(np.int16), p.affine)
    write_nifti(str(tmp_path / "mixed" / "a_seg.nii.gz"), p.labels[:-2], p.affine)
    (tmp_path / "mixed" / "b.nii.gz").write_bytes(b"not a nifti")
    write_nifti(str(tmp_path / "mixed" / "c.nii.gz"), p.volume.astype(np.int16), p.affine)
    write_nifti(str(tmp_path / "mixed" / "c_seg.nii.gz"), p.labels, p.affine)
    proc = run_program(BONE_DENSITY, tmp_path / "mixed", tmp_path / "out2", "--no-report", "--no-segmentation")
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    errors = {e["input"]: e["error"] for e in summary["errors"]}
    assert "does not match the CT's geometry" in errors["a.nii.gz"]
    assert "not a readable NIfTI" in {s["input"]: s["reason"] for s in summary["skipped"]}["b.nii.gz"]
    assert [s["input"] for s in summary["scans"]] == ["c.nii.gz"]
