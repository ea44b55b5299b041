#!/usr/bin/env python3
"""Checks a NIfTI conversion of synth-ct.py's phantom voxel by voxel.

usage: check-nifti.py FILE.nii.gz --cols C --rows R --slices S

synth-ct.py stores HU(col, row, s) = -1000 + 3*col + 5*row + 7*s for an axial series (rows along +y, columns
along +x in DICOM's LPS patient space, slice 0 the most inferior). Reoriented to RAS+ (nibabel's closest
canonical), voxel (i, j, k) must then hold HU(C-1-i, R-1-j, k): a flipped axis, a wrong slice order or a lost
rescale all show up. Prints a JSON verdict; exits 1 on a mismatch."""
import argparse
import json
import sys

import nibabel
import numpy

parser = argparse.ArgumentParser()
parser.add_argument("file")
parser.add_argument("--cols", type=int, required=True)
parser.add_argument("--rows", type=int, required=True)
parser.add_argument("--slices", type=int, required=True)
args = parser.parse_args()

image = nibabel.as_closest_canonical(nibabel.load(args.file))
data = image.get_fdata()
i, j, k = numpy.meshgrid(
    numpy.arange(args.cols), numpy.arange(args.rows), numpy.arange(args.slices), indexing="ij")
expected = -1000 + 3 * (args.cols - 1 - i) + 5 * (args.rows - 1 - j) + 7 * k
verdict = {
    "axcodes": "".join(nibabel.aff2axcodes(image.affine)),
    "shape": list(data.shape),
    "ok": data.shape == expected.shape and bool(numpy.array_equal(data, expected)),
}
if data.shape == expected.shape:
    verdict["max_abs_error"] = float(numpy.abs(data - expected).max())
print(json.dumps(verdict))
sys.exit(0 if verdict["ok"] else 1)
