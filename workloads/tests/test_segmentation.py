"""ct-segmentation: the shipped weights on held-out phantoms, the CLI's I/O contract, the training smoke run."""

import json
import os

import nibabel as nib
import numpy as np
import pytest

from conftest import SEGMENTATION, TRAIN, reorient, run_program
from common.phantom import write_nifti

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

import segment  # noqa: E402

DICE_MIN = 0.85
HELD_OUT = {"heldout_a": 7001, "heldout_b": 7002}  # seeds used by no training run (train.py: 1000+, 900000+)


def test_shipped_weights_format_and_size():
    w = segment.DEFAULT_WEIGHTS
    assert os.path.getsize(w) < 2_000_000
    meta = json.load(open(segment.meta_path(w)))
    assert meta["format"] == "deployctl-ctseg/1"
    assert meta["network"]["name"] == "monai.networks.nets.UNet"
    for key in ("spacing_mm", "intensity_window_hu", "roi_size", "classes", "training"):
        assert key in meta
    model, _ = segment.load_model(w, "cpu")
    assert sum(p.numel() for p in model.parameters()) == meta["training"]["parameters"]


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, phantom_factory):
    """The CLI over two held-out phantoms on a clinical grid, one stored RAS, one LPS with permuted axes."""
    root = tmp_path_factory.mktemp("seg")
    truth = {}
    os.makedirs(root / "in" / "sub")
    for (name, seed), codes in zip(HELD_OUT.items(), (("R", "A", "S"), ("S", "L", "P"))):
        p = phantom_factory(seed=seed, spacing=(0.9, 0.9, 2.5))
        v, aff = reorient(p.volume.astype(np.int16), p.affine, codes)
        lab, _ = reorient(p.labels, p.affine, codes)
        write_nifti(str(root / "in" / "sub" / f"{name}.nii.gz"), v, aff)
        truth[name] = (lab, aff)
    proc = run_program(SEGMENTATION, "--device", "cpu", root / "in", root / "out")
    assert proc.returncode == 0, proc.stderr
    return root, truth


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_dice_on_held_out_phantoms(segmented, name):
    root, truth = segmented
    lab, aff = truth[name]
    out = nib.load(str(root / "out" / "sub" / f"{name}_seg.nii.gz"))
    assert out.shape == lab.shape and np.allclose(out.affine, aff)  # the input's own geometry
    seg = np.asarray(out.dataobj)
    d = segment.dice(seg > 0, lab > 0)
    print(f"{name}: Dice {d:.4f}")
    assert d >= DICE_MIN
    # levels identified from the ribs: what is called L1 is L1 (a body off by one level would overlap nothing)
    assert segment.dice(seg == 20, lab == 20) >= DICE_MIN


def test_cli_summary_and_report(segmented):
    root, _ = segmented
    summary = json.loads((root / "out" / "summary.json").read_text())
    assert summary["device"] == "cpu" and not summary["mixed_precision"]
    assert [v["input"] for v in summary["volumes"]] == ["sub/heldout_a.nii.gz", "sub/heldout_b.nii.gz"]
    assert all(v["levels_identified"] for v in summary["volumes"])
    assert summary["volumes"][1]["orientation"] == "SLP"
    assert (root / "out" / "report.html").read_text().count("data:image/png;base64,") == 4


def test_cli_errors(tmp_path):
    proc = run_program(SEGMENTATION, tmp_path / "nope", tmp_path / "out")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    os.makedirs(tmp_path / "in")
    write_nifti(str(tmp_path / "in" / "x.nii.gz"), np.zeros((16, 16, 16), np.int16), np.eye(4))
    proc = run_program(SEGMENTATION, "--weights", tmp_path / "missing.pt", tmp_path / "in", tmp_path / "out")
    assert proc.returncode == 2 and "no such weights file" in proc.stderr


def test_training_smoke_run(tmp_path):
    """train.py --smoke: the CI run (tiny network, a few iterations); its weights load and run."""
    out = tmp_path / "smoke.pt"
    proc = run_program(TRAIN, "--smoke", "--out", out, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "held-out Dice" in proc.stdout
    meta = json.load(open(segment.meta_path(str(out))))
    assert meta["training"]["smoke"] is True
    model, meta = segment.load_model(str(out), "cpu")
    prob = segment.predict_probability(model, meta, np.full((40, 40, 20), 40.0, np.float32), (2.0, 2.0, 2.0), "cpu")
    assert prob.shape == (40, 40, 20) and np.isfinite(prob).all()
