"""bone-density given CT volumes only: it runs the segmentation workload itself (CPU here), finds L1 from the
ribs, and measures it."""

import json
import os

import pytest

from conftest import BONE_DENSITY, run_program

pytest.importorskip("torch")
pytest.importorskip("monai")


def test_bone_density_runs_the_segmentation_itself(tmp_path, phantom_factory):
    p = phantom_factory(seed=7003, spacing=(0.9, 0.9, 2.5), l1_trabecular_hu=100)
    staged = tmp_path / "volume" / "P1" / "1.2.9" / "1.2.9.1" / "nifti"
    p.save(str(staged), "P1_2", labels=False, truth=False)
    (staged / "P1_2.json").write_text(json.dumps({"Modality": "CT", "PatientAge": 70, "PatientSex": "F"}))
    proc = run_program(BONE_DENSITY, "--seg-device", "cpu", tmp_path / "volume", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "out" / "summary.json").read_text())["scans"][0]
    t = p.truth
    assert s["labels_source"] == "ct-segmentation workload"
    assert s["labels"] == os.path.join("segmentation", "P1", "1.2.9", "1.2.9.1", "nifti", "P1_2_seg.nii.gz")
    assert (tmp_path / "out" / s["labels"]).is_file()
    assert (tmp_path / "out" / "segmentation" / "report.html").is_file()
    assert abs(s["l1_trabecular_hu"] - t["l1_trabecular_hu"]) <= 5.0
    assert s["pickhardt_band"] == t["pickhardt_band"] == "osteoporosis_likely"
    assert s["bmd_mg_cm3"] == pytest.approx(t["l1_bmd_mg_cm3"], rel=0.05)
    assert s["qct_category"] == t["qct_category"]
    assert s["patient"] == {"age_years": 70, "sex": "F", "source": "sidecar"}
