"""Shared helpers for the workloads' tests: paths, running the programs, phantoms on disk, reorientation."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKLOADS = Path(__file__).resolve().parents[1]
for p in (WORKLOADS, WORKLOADS / "ct-segmentation", WORKLOADS / "bone-density"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

BONE_DENSITY = WORKLOADS / "bone-density" / "run"
SEGMENTATION = WORKLOADS / "ct-segmentation" / "run"
TRAIN = WORKLOADS / "ct-segmentation" / "train.py"
SPACING = (1.0, 1.0, 2.5)  # a clinical-like grid for the bone-density tests


def run_program(program, *args, timeout=600):
    """Runs a workload program with this Python; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, str(program), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def reorient(data, affine, axcodes):
    """DATA (RAS+ grid with AFFINE) stored in the axis order/directions AXCODES, e.g. ('L', 'P', 'S')."""
    import nibabel as nib

    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    target = nib.orientations.axcodes2ornt(tuple(axcodes))
    t = nib.orientations.ornt_transform(ras, target)
    new = nib.orientations.apply_orientation(data, t)
    return np.ascontiguousarray(new), affine @ nib.orientations.inv_ornt_aff(t, data.shape)


@pytest.fixture(scope="session")
def phantom_factory():
    from common.phantom import make_phantom

    cache = {}

    def make(**kw):
        key = tuple(sorted(kw.items()))
        if key not in cache:
            cache[key] = make_phantom(**kw)
        return cache[key]

    return make
