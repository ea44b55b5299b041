"""Vertebral levels from a vertebral-body mask: split the bodies along the spine, find the ribs, name them.

Arrays are RAS+ (x to the patient's right, y anterior, z superior), as niftio.RASImage gives them.

  1. The bodies: the mask is kept within a column of COLUMN_MM around the spine's median position (anything
     else is a false positive); the body area of each axial slice is measured, and the runs of slices whose area
     is at least 20 % of the typical (75th percentile) area are the bodies; discs are the gaps between them.
     Runs shorter than MIN_HEIGHT_MM are dropped unless they touch the edge of the field of view.
  2. The ribs: within each body's slab of slices, bone (HU > RIB_HU) lateral to the body (more than
     RIB_LATERAL_MM from its centre in x) and not far behind it (y > centre - 60 mm, which leaves out the table
     and a calibration phantom under the patient). A body with at least RIB_MIN_MM3 of it is rib-bearing.
  3. The levels: the lowest rib-bearing body is T12, the next one down L1, and the others are counted from
     there (VerSe codes: T12 = 19, L1 = 20, L2 = 21, ...).
This is the clinical rule (L1 is the first vertebra without ribs), made simple: it assumes 12 rib pairs, no
lumbar ribs, supine patient, and nothing else as dense as bone lateral to the spine (oral contrast in the bowel
would need a better rib detector). With anatomy that breaks it, give a label map with the levels instead.
"""

import numpy as np

try:
    from . import bmd as _bmd
except ImportError:  # pragma: no cover
    import bmd as _bmd

COLUMN_MM = 45.0
MIN_HEIGHT_MM = 8.0
RIB_HU = 300.0
RIB_LATERAL_MM = 55.0
RIB_MIN_MM3 = 1000.0


def split_bodies(mask, spacing):
    """[{'k0', 'k1', 'center_vox', 'partial', 'mask'}] top to bottom, and the cleaned mask (column only)."""
    m = np.asarray(mask, bool)
    if not m.any():
        return [], m
    sx, sy, sz = spacing
    xs, ys, _ = np.nonzero(m)
    cx, cy = np.median(xs), np.median(ys)
    ix = np.abs(np.arange(m.shape[0]) - cx) * sx <= COLUMN_MM
    iy = np.abs(np.arange(m.shape[1]) - cy) * sy <= COLUMN_MM
    col = m & ix[:, None, None] & iy[None, :, None]
    area = col.sum(axis=(0, 1)).astype(float) * sx * sy
    if not (area > 0).any():
        return [], col
    typical = np.percentile(area[area > 0], 75)
    on = area >= 0.2 * typical
    runs, k = [], 0
    nz = m.shape[2]
    while k < nz:
        if on[k]:
            k0 = k
            while k < nz and on[k]:
                k += 1
            runs.append((k0, k - 1))
        else:
            k += 1
    bodies = []
    for k0, k1 in runs:
        partial = k0 == 0 or k1 == nz - 1
        if (k1 - k0 + 1) * sz < MIN_HEIGHT_MM and not partial:
            continue
        bm = np.zeros_like(col)
        bm[:, :, k0:k1 + 1] = col[:, :, k0:k1 + 1]
        bx, by, bz = np.nonzero(bm)
        bodies.append({"k0": int(k0), "k1": int(k1), "partial": bool(partial), "mask": bm,
                       "center_vox": [float(bx.mean()), float(by.mean()), float(bz.mean())]})
    bodies.sort(key=lambda b: -b["k1"])  # superior first
    clean = np.zeros_like(col)
    for b in bodies:
        clean |= b["mask"]
    return bodies, clean


def rib_volume_mm3(hu, spacing, body):
    sx, sy, sz = spacing
    cx, cy, _ = body["center_vox"]
    dx = (np.arange(hu.shape[0]) - cx) * sx
    dy = (np.arange(hu.shape[1]) - cy) * sy
    region = (np.abs(dx)[:, None] >= RIB_LATERAL_MM) & (dy[None, :] >= -60.0)
    slab = hu[:, :, body["k0"]:body["k1"] + 1]
    bone = (slab > RIB_HU) & region[:, :, None]
    return float(bone.sum()) * sx * sy * sz


def identify_levels(mask, hu, spacing):
    """Labels the bodies of MASK by level. Returns (labels uint8 RAS, info dict). When no rib-bearing body with a
    body below it is found, every body is labelled 1 (level unknown) and info['identified'] is False."""
    bodies, clean = split_bodies(mask, spacing)
    labels = np.zeros(np.shape(mask), np.uint8)
    info = {"bodies": [], "identified": False, "method": "ribs (lowest rib-bearing body is T12)"}
    for b in bodies:
        b["rib_mm3"] = rib_volume_mm3(hu, spacing, b)
        b["ribs"] = b["rib_mm3"] >= RIB_MIN_MM3
    t12 = None
    for i, b in enumerate(bodies):
        if b["ribs"]:
            t12 = i
    if t12 is not None and t12 + 1 < len(bodies):
        info["identified"] = True
        for i, b in enumerate(bodies):
            code = _bmd.L1_CODE + (i - t12 - 1)
            b["code"] = code if code in _bmd.CODE_LEVELS else 1
    else:
        info["reason"] = ("no rib-bearing vertebral body found" if t12 is None
                          else "the lowest rib-bearing body (T12) has no body below it in the field of view")
        for b in bodies:
            b["code"] = 1
    for b in bodies:
        labels[b["mask"]] = b["code"]
        info["bodies"].append({
            "level": _bmd.CODE_LEVELS.get(b["code"]) if info["identified"] else None, "label": int(b["code"]),
            "slices": [b["k0"], b["k1"]], "partial": b["partial"], "rib_mm3": round(b["rib_mm3"], 1),
            "volume_cm3": round(float(b["mask"].sum()) * float(np.prod(spacing)) / 1000.0, 2)})
    return labels, info
