"""Small morphology helpers in numpy (scipy.ndimage is used when installed, for speed only)."""

import numpy as np


def erode_inplane(mask, spacing_xy, radius_mm):
    """Erodes a 3D mask (x, y, z) slice by slice so that what stays lies more than RADIUS_MM (in plane) from
    the mask's surface, the surface being half way between inside and outside voxel centres: a voxel stays when
    no outside voxel centre of its slice is within RADIUS_MM + half a voxel."""
    m = np.asarray(mask, bool)
    if radius_mm <= 0:
        return m.copy()
    sx, sy = float(spacing_xy[0]), float(spacing_xy[1])
    reach = radius_mm + max(sx, sy) / 2.0
    ix, iy = int(np.floor(reach / sx)), int(np.floor(reach / sy))
    p = np.pad(m, ((ix + 1, ix + 1), (iy + 1, iy + 1), (0, 0)))
    out = m.copy()
    nx, ny = m.shape[:2]
    for dx in range(-ix, ix + 1):
        for dy in range(-iy, iy + 1):
            if (dx * sx) ** 2 + (dy * sy) ** 2 > reach ** 2:
                continue
            out &= p[ix + 1 + dx:ix + 1 + dx + nx, iy + 1 + dy:iy + 1 + dy + ny]
    return out


def label2d(mask):
    """Connected components (4-connected) of a 2D mask: (labels int32, count); 0 is background."""
    m = np.asarray(mask, bool)
    try:
        from scipy import ndimage

        lab, n = ndimage.label(m)
        return lab.astype(np.int32), int(n)
    except ImportError:
        pass
    # min-label propagation until nothing changes
    big = np.iinfo(np.int32).max
    lab = np.where(m, np.arange(1, m.size + 1, dtype=np.int32).reshape(m.shape), big)
    while True:
        prev = lab
        cur = lab.copy()
        cur[1:, :] = np.minimum(cur[1:, :], lab[:-1, :])
        cur[:-1, :] = np.minimum(cur[:-1, :], lab[1:, :])
        cur[:, 1:] = np.minimum(cur[:, 1:], lab[:, :-1])
        cur[:, :-1] = np.minimum(cur[:, :-1], lab[:, 1:])
        cur[~m] = big
        lab = cur
        if np.array_equal(lab, prev):
            break
    out = np.zeros(m.shape, np.int32)
    uniq = np.unique(lab[m])
    out[m] = np.searchsorted(uniq, lab[m]) + 1
    return out, int(uniq.size)
