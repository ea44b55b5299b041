"""Synthetic abdominal CT phantoms with known truth, for training and testing the workloads.

    from common.phantom import make_phantom
    p = make_phantom(seed=3, spacing=(1.0, 1.0, 2.5), l1_trabecular_hu=140)
    p.volume   # float32 HU (whole numbers, as a CT scanner stores them), axes x, y, z in RAS+
    p.labels   # uint8: vertebral bodies by level (VerSe codes: T12 = 19, L1 = 20, L2 = 21, ...), 0 elsewhere
    p.affine   # 4x4 voxel -> RAS+ mm
    p.truth    # dict: every drawn parameter (trabecular HU per level, rod concentrations and HU, ...)
    p.save(DIR, "case")  # DIR/case.nii.gz (int16), DIR/case_seg.nii.gz (uint8), DIR/case_truth.json

Everything drawn comes from numpy.random.default_rng(seed): the same arguments give the same arrays.

Anatomy, in RAS+ mm (x towards the patient's right, y anterior, z superior); the geometry is analytic and is
evaluated on the voxel grid, then blurred (scanner point-spread) and given Gaussian noise:
  - air -1000; body ellipse with a flat back; subcutaneous fat (~-100 HU) around a muscle wall (~50 HU);
    visceral fat (~-90 HU) inside, filled by organs: liver, spleen, kidneys, aorta and IVC (optionally
    contrast-enhanced), psoas and back muscles, bowel loops with some gas;
  - a spine of vertebrae T10-L5 (those whose body reaches the field of view): each vertebral body an elliptic
    cylinder with a flat posterior wall and a slight waist, a cortical shell (700-1000 HU, 1.5-2.5 mm) around a
    trabecular core at a chosen HU; posterior elements (pedicles, arch, spinous and transverse processes) and the
    spinal canal; intervertebral discs (70-100 HU) between the bodies; ribs on the thoracic vertebrae (T12's
    floating rib short), which is what tells T12 from L1;
  - optionally a calibration phantom under the patient, separated from the back by an air gap: a pad
    (-110..-60 HU) with rods of K2HPO4 at known concentrations, HU = intercept + slope * concentration;
  - optionally a thin curved CT table under everything.
The label map marks the vertebral bodies only (shell and core), not discs or posterior elements.
"""

import json
import os

import numpy as np

try:  # the package layout (tests, train.py) or a plain import with workloads/common on sys.path
    from . import bmd as _bmd
except ImportError:  # pragma: no cover
    import bmd as _bmd

LEVELS = ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]  # top to bottom
RIB_LEVELS = {"T10", "T11", "T12"}
DEFAULT_RODS = (0.0, 50.0, 100.0, 200.0)


class Phantom:
    def __init__(self, volume, labels, affine, truth):
        self.volume, self.labels, self.affine, self.truth = volume, labels, affine, truth

    def save(self, directory, name, labels=True, truth=True):
        """Writes NAME.nii.gz (int16 HU), NAME_seg.nii.gz (uint8 labels), NAME_truth.json; returns the CT path."""
        os.makedirs(directory, exist_ok=True)
        ct_path = os.path.join(directory, name + ".nii.gz")
        write_nifti(ct_path, self.volume.astype(np.int16), self.affine)
        if labels:
            write_nifti(os.path.join(directory, name + "_seg.nii.gz"), self.labels, self.affine)
        if truth:
            with open(os.path.join(directory, name + "_truth.json"), "w") as f:
                json.dump(self.truth, f, indent=1, sort_keys=True)
        return ct_path


def write_nifti(path, data, affine):
    """NIfTI-1 with sform and qform set to AFFINE (scanner code), units mm."""
    import nibabel as nib

    image = nib.Nifti1Image(np.asarray(data), affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm")
    nib.save(image, path)


class _Grid:
    """Voxel-centre coordinates and box lookups, so each shape is drawn only inside its bounding box."""

    def __init__(self, origin, spacing, shape):
        self.axes = [origin[a] + spacing[a] * np.arange(shape[a], dtype=np.float32) for a in range(3)]

    def box(self, lo, hi):
        sl, coords = [], []
        for a in range(3):
            ax = self.axes[a]
            i0 = int(np.searchsorted(ax, lo[a], side="left"))
            i1 = int(np.searchsorted(ax, hi[a], side="right"))
            sl.append(slice(i0, max(i0, i1)))
            coords.append(ax[i0:max(i0, i1)])
        if any(s.stop <= s.start for s in sl):
            return None
        x, y, z = coords
        return tuple(sl), x[:, None, None], y[None, :, None], z[None, None, :]


class _Painter:
    def __init__(self, grid, volume, labels):
        self.g, self.v, self.l = grid, volume, labels

    def paint(self, box, mask_fn, hu, label=None):
        b = self.g.box(*box)
        if b is None:
            return
        sl, x, y, z = b
        m = np.broadcast_to(mask_fn(x, y, z), self.v[sl].shape)
        if not m.any():
            return
        self.v[sl][m] = hu
        if label is not None:
            self.l[sl][m] = label

    def ellipsoid(self, c, r, hu, label=None):
        self.paint((np.subtract(c, r), np.add(c, r)),
                   lambda x, y, z: ((x - c[0]) / r[0]) ** 2 + ((y - c[1]) / r[1]) ** 2
                   + ((z - c[2]) / r[2]) ** 2 <= 1.0, hu, label)

    def cylinder(self, cx, cy, rx, ry, z0, z1, hu, label=None):
        """Elliptic cylinder along z."""
        self.paint(((cx - rx, cy - ry, z0), (cx + rx, cy + ry, z1)),
                   lambda x, y, z: (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0) & (z >= z0) & (z <= z1),
                   hu, label)

    def bar(self, p0, p1, r, hu):
        """A round bar from p0 to p1 (capsule)."""
        p0, p1 = np.asarray(p0, np.float32), np.asarray(p1, np.float32)
        d = p1 - p0
        dd = float(d @ d) or 1.0

        def mask(x, y, z):
            t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1] + (z - p0[2]) * d[2]) / dd, 0.0, 1.0)
            return (x - p0[0] - t * d[0]) ** 2 + (y - p0[1] - t * d[1]) ** 2 + (z - p0[2] - t * d[2]) ** 2 <= r * r

        self.paint((np.minimum(p0, p1) - r, np.maximum(p0, p1) + r), mask, hu)


def _blur(volume, sigma_vox):
    """Separable Gaussian blur (numpy only), reflecting at the edges."""
    out = volume
    for axis, s in enumerate(sigma_vox):
        if s < 0.2:
            continue
        radius = max(1, int(np.ceil(3 * s)))
        k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / s) ** 2)
        k = (k / k.sum()).astype(np.float32)
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for i, w in enumerate(k):
            idx = [slice(None)] * 3
            idx[axis] = slice(i, i + n)
            acc += w * padded[tuple(idx)]
        out = acc
    return out


def _vertebral_body(cx, cy, zc, rx, ry, h, waist, shrink=0.0):
    """Mask function of a vertebral body (shrink > 0 gives the trabecular core inside a shell of that width)."""
    back = cy - 0.72 * ry  # flat posterior wall

    def mask(x, y, z):
        u = (z - zc) / (h / 2.0)
        s = 1.0 - waist * (1.0 - np.clip(u, -1, 1) ** 2)  # narrower at mid-height
        ex, ey = rx * s - shrink, ry * s - shrink
        inside = ((x - cx) / ex) ** 2 + ((y - cy) / ey) ** 2 <= 1.0
        return inside & (np.abs(z - zc) <= h / 2.0 - shrink) & (y >= back + shrink)

    box = ((cx - rx, cy - ry, zc - h / 2), (cx + rx, cy + ry, zc + h / 2))
    return box, mask


def make_phantom(seed=0, spacing=(2.0, 2.0, 2.0), fov_mm=(360.0, 300.0, 160.0), l1_trabecular_hu=None,
                 trabecular_hu=None, calibration=True, rod_concentrations=DEFAULT_RODS, rod_slope=None,
                 rod_intercept=None, pad_hu=None, noise_sd=None, blur_mm=0.7, contrast=None, table=True,
                 l1_z_fraction=None):
    """Draws a phantom. Any parameter left None is drawn from the seed; see the module docstring.

    spacing: voxel size (x, y, z) mm.  fov_mm: field of view; x in [-fx/2, fx/2], y in [-0.58 fy, 0.42 fy],
    z in [0, fz].  l1_trabecular_hu: L1's core HU (default uniform 60-260); trabecular_hu: a dict level -> HU
    overriding any level.  calibration: draw the rod phantom under the patient.  noise_sd: HU (default 8-25).
    l1_z_fraction: where L1's centre sits in the z field of view (default 0.40-0.55).
    """
    rng = np.random.default_rng(seed)
    U = lambda a, b: float(rng.uniform(a, b))  # noqa: E731

    spacing = tuple(float(s) for s in spacing)
    shape = tuple(max(8, int(round(f / s))) for f, s in zip(fov_mm, spacing))
    origin = (-fov_mm[0] / 2 + spacing[0] / 2, -0.58 * fov_mm[1] + spacing[1] / 2, spacing[2] / 2)
    grid = _Grid(origin, spacing, shape)
    volume = np.full(shape, -1000.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    P = _Painter(grid, volume, labels)
    z_lo, z_hi = 0.0, fov_mm[2]
    zfull = (z_lo - 50, z_hi + 50)

    contrast = bool(rng.random() < 0.4) if contrast is None else bool(contrast)
    noise_sd = U(8, 25) if noise_sd is None else float(noise_sd)

    # --- body ---------------------------------------------------------------------------------------------
    Ax, Ay = U(135, 165), U(95, 118)
    bx, by = U(-8, 8), U(-6, 6)
    back_y = by - 0.92 * Ay  # flat back: the patient lies on it
    fat = U(10, 30)
    muscle = U(6, 12)

    def body_mask(ax, ay, flat):
        return lambda x, y, z: (((x - bx) / ax) ** 2 + ((y - by) / ay) ** 2 <= 1.0) & (y >= flat)

    P.paint(((bx - Ax, by - Ay, zfull[0]), (bx + Ax, by + Ay, zfull[1])), body_mask(Ax, Ay, back_y), U(-110, -90))
    P.paint(((bx - Ax, by - Ay, zfull[0]), (bx + Ax, by + Ay, zfull[1])),
            body_mask(Ax - fat, Ay - fat, back_y + fat), U(40, 60))
    iAx, iAy = Ax - fat - muscle, Ay - fat - muscle
    P.paint(((bx - Ax, by - Ay, zfull[0]), (bx + Ax, by + Ay, zfull[1])),
            body_mask(iAx, iAy, back_y + fat + muscle), U(-100, -80))

    # --- spine geometry -------------------------------------------------------------------------------------
    vx = bx + U(-3, 3)
    vy = back_y + U(68, 80)  # vertebral body centre, posterior in the abdomen
    rx0, ry0, h0, d0 = U(20, 25), U(14, 18), U(23, 28), U(7, 10)
    l1_frac = U(0.40, 0.55) if l1_z_fraction is None else float(l1_z_fraction)
    l1_hu = U(60, 260) if l1_trabecular_hu is None else float(l1_trabecular_hu)
    shell = U(1.5, 2.5)
    cortical_hu = U(700, 1000)
    posterior_hu = U(350, 600)
    disc_hu = U(70, 100)
    waist = U(0.03, 0.08)
    il1 = LEVELS.index("L1")
    verts = {}
    zc = l1_frac * fov_mm[2]
    # place L1, then stack up and down
    geo = {}
    for i, name in enumerate(LEVELS):
        k = i - il1
        geo[name] = dict(rx=rx0 * (1 + 0.03 * k), ry=ry0 * (1 + 0.025 * k), h=h0 * (1 + 0.015 * k),
                         disc=d0 * (1 + 0.04 * k))
    centres = {"L1": zc}
    for i in range(il1 - 1, -1, -1):  # upwards
        a, b = LEVELS[i], LEVELS[i + 1]
        centres[a] = centres[b] + geo[b]["h"] / 2 + geo[a]["disc"] + geo[a]["h"] / 2
    for i in range(il1 + 1, len(LEVELS)):  # downwards
        a, b = LEVELS[i], LEVELS[i - 1]
        centres[a] = centres[b] - geo[b]["h"] / 2 - geo[b]["disc"] - geo[a]["h"] / 2
    for i, name in enumerate(LEVELS):
        g = geo[name]
        g["z"] = centres[name]
        g["x"] = vx + U(-1.5, 1.5)
        g["y"] = vy + 1.8 * (i - il1) + U(-1.5, 1.5)  # mild lordosis: lower levels more anterior
        if trabecular_hu and name in trabecular_hu:
            g["hu"] = float(trabecular_hu[name])
        elif name == "L1":
            g["hu"] = l1_hu
        else:
            g["hu"] = float(np.clip(l1_hu + rng.normal(0, 8) - 2.0 * (i - il1), 30, 400))

    # --- organs ----------------------------------------------------------------------------------------------
    zT12, zL3 = centres["T12"], centres["L3"]
    P.ellipsoid((bx + 0.45 * iAx, by + U(0, 20), zT12 + U(10, 30)), (U(55, 75), U(50, 65), U(70, 90)),
                U(100, 130) if contrast else U(50, 70))  # liver (patient's right = +x)
    P.ellipsoid((bx - 0.55 * iAx, vy + U(5, 20), zT12 + U(0, 25)), (U(30, 40), U(35, 45), U(40, 55)),
                U(100, 130) if contrast else U(40, 55))  # spleen
    for s in (-1, 1):
        kc = (vx + s * (rx0 + U(38, 48)), vy + U(-8, 2), centres["L2"] + U(-10, 10) + (8 if s > 0 else 0) - 4)
        P.ellipsoid(kc, (U(24, 30), U(18, 22), U(45, 55)), U(150, 220) if contrast else U(25, 40))  # kidney
    for _ in range(int(rng.integers(10, 18))):  # bowel loops, some with gas
        c = (bx + U(-0.7, 0.7) * iAx, vy + ry0 + U(25, 0.8 * iAy + (by - vy)), U(0, fov_mm[2]))
        r = (U(14, 30), U(12, 25), U(15, 35))
        P.ellipsoid(c, r, U(-20, 60) if not contrast else U(0, 90))
        if rng.random() < 0.35:
            P.ellipsoid((c[0], c[1] + 0.4 * r[1], c[2]), (0.6 * r[0], 0.45 * r[1], 0.6 * r[2]), U(-950, -850))

    # psoas and back muscles (along the spine), aorta and IVC (anterior to it)
    for s in (-1, 1):
        for name in ("L1", "L2", "L3", "L4", "L5"):
            g = geo[name]
            rp = 8 + 4.5 * (LEVELS.index(name) - il1)
            P.cylinder(g["x"] + s * (g["rx"] + 0.7 * rp), g["y"] - 2, rp, rp * 1.1,
                       g["z"] - g["h"] / 2 - g["disc"], g["z"] + g["h"] / 2, U(45, 60))
        P.cylinder(vx + s * U(30, 38), vy - ry0 - U(28, 34), U(20, 26), U(18, 22), *zfull, U(45, 60))
    ao_r = U(9, 13)
    P.cylinder(vx - U(10, 18), vy + ry0 + ao_r + U(2, 5), ao_r, ao_r, *zfull, U(180, 300) if contrast else U(35, 50))
    P.cylinder(vx + U(18, 26), vy + ry0 + U(8, 12), U(10, 14), U(7, 10), *zfull, U(110, 160) if contrast else U(35, 50))

    # --- spine ---------------------------------------------------------------------------------------------
    canal_r = U(8, 10)
    for name in LEVELS:
        g = geo[name]
        x0, y0, z0, rx, ry, h = g["x"], g["y"], g["z"], g["rx"], g["ry"], g["h"]
        if z0 - h / 2 - g["disc"] > z_hi + 60 or z0 + h / 2 < z_lo - 60:
            continue
        back = y0 - 0.72 * ry
        cy_canal = back - canal_r - 2
        zt = z0 + 0.1 * h
        # posterior elements: arch around the canal, pedicles, spinous and transverse processes
        P.cylinder(x0, cy_canal, canal_r + 5, canal_r + 6, z0 - 0.42 * h, z0 + 0.42 * h, posterior_hu)
        P.cylinder(x0, cy_canal, canal_r, canal_r, z0 - h / 2 - g["disc"] - 1, z0 + h / 2 + 1, U(15, 30))
        P.bar((x0, cy_canal - canal_r - 3, zt), (x0, cy_canal - canal_r - 30, zt - 8), 4.0, posterior_hu)
        tp = U(26, 34) if name.startswith("L") else U(22, 28)
        for s in (-1, 1):
            P.bar((x0 + s * 8, cy_canal - 1, zt), (x0 + s * tp, cy_canal - 3, zt), 3.5, posterior_hu)
        # disc below the body (between this body and the next one down)
        box, m = _vertebral_body(x0, y0, z0 - h / 2 - g["disc"] / 2, rx * 0.97, ry * 0.97, g["disc"] + 0.5, 0)
        P.paint(box, m, disc_hu)
        # the body: shell (labelled), then its trabecular core
        code = _bmd.LEVEL_CODES[name]
        box, m = _vertebral_body(x0, y0, z0, rx, ry, h, waist)
        P.paint(box, m, cortical_hu, label=code)
        box, m = _vertebral_body(x0, y0, z0, rx, ry, h, waist, shrink=shell)
        P.paint(box, m, g["hu"])
        # ribs on thoracic levels: a curve from the transverse process round the body wall, descending
        if name in RIB_LEVELS:
            reach = 0.55 if name == "T12" else (0.8 if name == "T11" else 1.0)
            for s in (-1, 1):
                p0 = np.array([x0 + s * (tp - 2), cy_canal - 3, zt])
                p1 = np.array([x0 + s * (iAx * 0.75), cy_canal - 25, zt - 2])
                p2 = np.array([bx + s * (iAx - 6), by - 0.2 * iAy, zt - 5])
                p3 = np.array([bx + s * (iAx * 0.7), by + 0.55 * iAy, zt - 9])
                prev = p0
                n = 16
                for t in np.linspace(0, reach, n)[1:]:
                    q = ((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3)
                    P.bar(prev, q, 4.5, posterior_hu)
                    prev = q

    labels[:] = 0  # the labels: bodies only, redrawn so that nothing painted later (ribs, discs) is marked
    for name in LEVELS:
        g = geo[name]
        box, m = _vertebral_body(g["x"], g["y"], g["z"], g["rx"], g["ry"], g["h"], waist)
        b = grid.box(*box)
        if b is not None:
            sl, x, y, z = b
            labels[sl][np.broadcast_to(m(x, y, z), labels[sl].shape)] = _bmd.LEVEL_CODES[name]

    # --- calibration phantom and table -------------------------------------------------------------------------
    cal = None
    if calibration:
        slope = U(1.1, 1.4) if rod_slope is None else float(rod_slope)
        intercept = U(-5, 10) if rod_intercept is None else float(rod_intercept)
        pad = U(-110, -60) if pad_hu is None else float(pad_hu)
        gap, height, width = U(3, 6), U(36, 44), U(180, 220)
        top = back_y - gap
        pcx = vx + U(-10, 10)
        P.paint(((pcx - width / 2, top - height, zfull[0]), (pcx + width / 2, top, zfull[1])),
                lambda x, y, z: np.ones(np.broadcast_shapes(x.shape, y.shape, z.shape), bool), pad)
        rod_r = U(6.5, 8.0)
        n = len(rod_concentrations)
        xs = pcx + (np.arange(n) - (n - 1) / 2) * (width - 40) / max(n - 1, 1)
        rods = []
        for c, x in zip(rod_concentrations, xs):
            hu = intercept + slope * float(c)
            P.cylinder(float(x), top - height / 2, rod_r, rod_r, *zfull, hu)
            rods.append({"concentration_mg_cm3": float(c), "hu": hu, "center_mm": [float(x), top - height / 2]})
        cal = {"rods": rods, "slope_hu_per_mg_cm3": slope, "intercept_hu": intercept, "pad_hu": pad,
               "rod_radius_mm": rod_r}
        bottom = top - height
    else:
        bottom = back_y
    if table:
        ty = bottom - U(3, 8)
        thu = U(150, 350)
        P.paint(((-fov_mm[0], ty - 60, zfull[0]), (fov_mm[0], ty + 1, zfull[1])),
                lambda x, y, z: np.abs(y - ty + 40 * (1 - np.sqrt(np.clip(1 - (x / 220.0) ** 2, 0, 1)))) <= 1.6,
                thu)  # a curved plate, 3 mm thick

    # --- scanner: blur, noise, whole HU ----------------------------------------------------------------------------
    volume = _blur(volume, [blur_mm / s for s in spacing])
    volume += rng.normal(0.0, noise_sd, size=shape).astype(np.float32)
    np.clip(volume, -1024, 3071, out=volume)
    np.rint(volume, out=volume)

    affine = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
    affine[:3, 3] = origin
    present = [n for n in LEVELS if (labels == _bmd.LEVEL_CODES[n]).any()]
    truth = {
        "seed": int(seed), "spacing_mm": list(spacing), "shape": list(shape), "contrast": contrast,
        "noise_sd_hu": noise_sd, "blur_mm": blur_mm, "cortical_hu": cortical_hu, "shell_mm": shell,
        "disc_hu": disc_hu, "levels_present": present, "rib_levels": sorted(RIB_LEVELS & set(present)),
        "labels": {n: _bmd.LEVEL_CODES[n] for n in present},
        "vertebrae": {n: {"label": _bmd.LEVEL_CODES[n], "trabecular_hu": geo[n]["hu"],
                          "center_mm": [geo[n]["x"], geo[n]["y"], geo[n]["z"]], "height_mm": geo[n]["h"],
                          "half_width_mm": geo[n]["rx"], "half_depth_mm": geo[n]["ry"]} for n in present},
        "l1_trabecular_hu": geo["L1"]["hu"],
        "pickhardt_band": _bmd.pickhardt_band(geo["L1"]["hu"]),
        "calibration": cal,
    }
    if cal:
        bmd = (geo["L1"]["hu"] - cal["intercept_hu"]) / cal["slope_hu_per_mg_cm3"]
        truth["l1_bmd_mg_cm3"] = bmd
        truth["qct_category"] = _bmd.qct_category(bmd)
    return Phantom(volume, labels, affine, truth)


if __name__ == "__main__":  # python3 workloads/common/phantom.py OUTDIR [--seed N] [--hu HU] [--spacing X,Y,Z]
    import argparse

    ap = argparse.ArgumentParser(description="Write a synthetic abdominal CT phantom with its label map and truth.")
    ap.add_argument("outdir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", default="phantom")
    ap.add_argument("--hu", type=float, default=None, help="L1 trabecular HU")
    ap.add_argument("--spacing", default="1,1,2.5")
    ap.add_argument("--no-calibration", action="store_true")
    a = ap.parse_args()
    p = make_phantom(seed=a.seed, spacing=[float(v) for v in a.spacing.split(",")], l1_trabecular_hu=a.hu,
                     calibration=not a.no_calibration)
    print(p.save(a.outdir, a.name))
