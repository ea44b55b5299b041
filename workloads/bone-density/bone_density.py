"""Opportunistic bone density of L1 in CT: trabecular ROI, Pickhardt band, phantom-calibrated BMD.

Per CT volume (RAS+, see common/niftio.py):
  1. L1: from a label map (label 20, or --l1-label) when it has one; a map of bodies without levels (values 0/1)
     is labelled by common/spine.py (the lowest rib-bearing body is T12, the next one down L1).
  2. Trabecular ROI: L1's slices within the central half of its height (away from the endplates), eroded in
     plane by the cortex margin (default 5 mm from the body's outer surface, which clears a 1-2.5 mm cortical
     shell, the scanner's blur and a segmentation boundary a voxel off: with a predicted mask, 4 mm left up to
     6 HU of cortex in the mean on phantoms, 5 mm under 1 HU). If that leaves fewer than MIN_ROI_VOXELS
     voxels, the margin is reduced (4, 3, then 2 mm) and a warning recorded. Mean, median, SD of HU in the ROI.
  3. Pickhardt et al. 2013 band of the mean (common/bmd.py).
  4. Calibration phantom (QCT): on the mean image of L1's slices, the phantom is the largest dense (> -300 HU)
     object lying wholly more than 40 mm behind the vertebral body's centre (under the patient, apart from the
     body); its rods are the round blobs differing from the pad's median by > 20 HU; rod ROIs are discs of 0.6 x
     the rod radius at their centres. Rods are matched to the given concentrations in order of HU (HU rises with
     K2HPO4). A least-squares fit HU = b + m c gives BMD = (HU_L1 - b) / m mg/cm3 and the QCT category.
     A phantom touching the patient, or one whose zero rod matches its pad, is not found (recorded as such).
"""

import os

import numpy as np

from common import bmd as B
from common import imaging
from common.morph import erode_inplane, label2d
from common.spine import identify_levels

MIN_ROI_VOXELS = 30


class AnalysisError(Exception):
    pass


def l1_mask(labels, hu, spacing, l1_label=B.L1_CODE):
    """(mask, how, level_info). LABELS: RAS label map."""
    values = set(int(v) for v in np.unique(labels)) - {0}
    if not values:
        raise AnalysisError("the label map is empty (no vertebral bodies)")
    if l1_label in values:
        return labels == l1_label, f"label map (label {l1_label})", None
    if values <= {1}:
        lab, info = identify_levels(labels > 0, hu, spacing)
        if not info["identified"]:
            raise AnalysisError(f"L1 not identified: {info.get('reason')}; give a label map with L1 labelled "
                                f"{l1_label} (--labels)")
        return lab == B.L1_CODE, "vertebral-body mask, levels from the ribs (lowest rib-bearing body is T12)", info
    names = ", ".join(B.CODE_LEVELS.get(v, str(v)) for v in sorted(values))
    raise AnalysisError(f"the label map has no L1 (label {l1_label}); it has {names}")


def trabecular_roi(mask, spacing, margin_mm=5.0, central_fraction=0.5):
    """(roi mask, info): the central slices of MASK eroded in plane by margin_mm (reduced if too few voxels)."""
    ks = np.nonzero(mask.any(axis=(0, 1)))[0]
    if ks.size == 0:
        raise AnalysisError("L1 mask is empty")
    k0, k1 = int(ks.min()), int(ks.max())
    sz = spacing[2]
    height = (k1 - k0 + 1) * sz
    kc = (k0 + k1) / 2.0
    keep = [k for k in range(k0, k1 + 1) if abs(k - kc) * sz <= central_fraction * height / 2.0 + 1e-6]
    if not keep:
        keep = [int(round(kc))]
    # work on the bounding box only
    xs = np.nonzero(mask.any(axis=(1, 2)))[0]
    ys = np.nonzero(mask.any(axis=(0, 2)))[0]
    box = (slice(xs.min(), xs.max() + 1), slice(ys.min(), ys.max() + 1), slice(min(keep), max(keep) + 1))
    sub = mask[box]
    warnings = []
    for margin in [margin_mm] + [m for m in (4.0, 3.0, 2.0) if m < margin_mm]:
        eroded = erode_inplane(sub, spacing[:2], margin)
        if eroded.sum() >= MIN_ROI_VOXELS:
            break
        warnings.append(f"ROI with a {margin:g} mm cortex margin has {int(eroded.sum())} voxels; margin reduced")
    else:
        raise AnalysisError(f"L1 too small for a trabecular ROI ({int(eroded.sum())} voxels at a 2 mm margin)")
    roi = np.zeros_like(mask)
    roi[box] = eroded
    info = {"slices": [min(keep), max(keep)], "l1_slices": [k0, k1], "l1_height_mm": round(height, 1),
            "cortex_margin_mm": margin, "warnings": warnings,
            "partial_l1": bool(k0 == 0 or k1 == mask.shape[2] - 1)}
    if info["partial_l1"]:
        warnings.append("L1 touches the edge of the field of view: its centre may be misplaced")
    return roi, info


def find_calibration(hu, spacing, l1, concentrations, contrast_hu=20.0):
    """(calibration dict, None) or (None, reason)."""
    sx, sy, sz = spacing
    ks = np.nonzero(l1.any(axis=(0, 1)))[0]
    k0, k1 = int(ks.min()), int(ks.max())
    img = hu[:, :, k0:k1 + 1].mean(axis=2)
    xs, ys, _ = np.nonzero(l1)
    cy = ys.mean()
    y_mm = (np.arange(hu.shape[1]) - cy) * sy
    lab, n = label2d(img > -300)
    best, best_area = None, 0.0
    if n:
        counts = np.bincount(lab.ravel(), minlength=n + 1)
        ymax = np.full(n + 1, -np.inf)
        yy = np.broadcast_to(y_mm[None, :], lab.shape)
        np.maximum.at(ymax, lab.ravel(), yy.ravel())
        for i in range(1, n + 1):
            area = counts[i] * sx * sy
            if ymax[i] < -40.0 and area >= 2000.0 and area > best_area:
                best, best_area = i, area
    if best is None:
        return None, "no calibration phantom found (no dense object under the patient, apart from the body)"
    pad = lab == best
    core = erode_inplane(pad[:, :, None], (sx, sy), 2.0)[:, :, 0]
    pad_hu = float(np.median(img[core])) if core.any() else float(np.median(img[pad]))
    cand = core & (np.abs(img - pad_hu) > contrast_hu)
    rl, rn = label2d(cand)
    rods = []
    gx, gy = np.meshgrid(np.arange(img.shape[0]), np.arange(img.shape[1]), indexing="ij")
    for j in range(1, rn + 1):
        comp = rl == j
        area = comp.sum() * sx * sy
        if not 30.0 <= area <= 2500.0:
            continue
        px, py = np.nonzero(comp)
        ext_x, ext_y = (px.max() - px.min() + 1) * sx, (py.max() - py.min() + 1) * sy
        if not 0.6 <= ext_x / ext_y <= 1.6:
            continue
        r_eq = np.sqrt(area / np.pi)
        cxr, cyr = px.mean(), py.mean()
        disc = ((gx - cxr) * sx) ** 2 + ((gy - cyr) * sy) ** 2 <= (0.6 * r_eq) ** 2
        disc &= comp
        if disc.sum() < 5:
            continue
        vals = hu[:, :, k0:k1 + 1][disc]
        rods.append({"hu": float(vals.mean()), "sd_hu": float(vals.std()), "voxels": int(vals.size),
                     "center_vox": [float(cxr), float(cyr)], "radius_mm": round(float(r_eq), 2), "disc": disc})
    if len(rods) != len(concentrations):
        return None, (f"calibration phantom found, but {len(rods)} rod(s) detected where {len(concentrations)} "
                      f"concentrations were given ({', '.join(f'{c:g}' for c in concentrations)} mg/cm3)")
    rods.sort(key=lambda r: r["hu"])
    conc = sorted(float(c) for c in concentrations)
    for r, c in zip(rods, conc):
        r["concentration_mg_cm3"] = c
    x = np.array(conc)
    y = np.array([r["hu"] for r in rods])
    m, b = np.polyfit(x, y, 1)
    pred = b + m * x
    ss = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss if ss > 0 else 0.0
    if m <= 0:
        return None, f"calibration fit has a non-positive slope ({m:.3f} HU per mg/cm3)"
    return {"slope_hu_per_mg_cm3": float(m), "intercept_hu": float(b), "r2": r2, "pad_hu": pad_hu,
            "pad_mask": pad, "rods": rods, "slices": [k0, k1]}, None


def analyse(hu, spacing, labels, concentrations=(0, 50, 100, 200), phantom=True, margin_mm=5.0,
            l1_label=B.L1_CODE):
    """The measurements of one RAS+ volume. Returns (result dict for summary.json, figures [(caption, png)])."""
    mask, how, level_info = l1_mask(labels, hu, spacing, l1_label)
    roi, roi_info = trabecular_roi(mask, spacing, margin_mm)
    vals = hu[roi]
    mean, median = float(vals.mean()), float(np.median(vals))
    res = {
        "l1_trabecular_hu": round(mean, 2), "l1_trabecular_hu_median": round(median, 2),
        "l1_trabecular_hu_sd": round(float(vals.std()), 2), "pickhardt_band": B.pickhardt_band(mean),
        "roi_voxels": int(vals.size), "roi_volume_mm3": round(float(vals.size * np.prod(spacing)), 1),
        "roi_slices": roi_info["slices"], "roi_cortex_margin_mm": roi_info["cortex_margin_mm"],
        "l1_source": how, "l1_height_mm": roi_info["l1_height_mm"], "warnings": list(roi_info["warnings"]),
        "bmd_mg_cm3": None, "qct_category": None, "calibration": None,
    }
    if level_info:
        res["levels"] = level_info["bodies"]
    cal = None
    if phantom:
        cal, why = find_calibration(hu, spacing, mask, concentrations)
        if cal:
            bmd = (mean - cal["intercept_hu"]) / cal["slope_hu_per_mg_cm3"]
            res["bmd_mg_cm3"] = round(bmd, 2)
            res["qct_category"] = B.qct_category(bmd)
            res["calibration"] = {
                "slope_hu_per_mg_cm3": round(cal["slope_hu_per_mg_cm3"], 4),
                "intercept_hu": round(cal["intercept_hu"], 2), "r2": round(cal["r2"], 5),
                "pad_hu": round(cal["pad_hu"], 1),
                "rods": [{"concentration_mg_cm3": r["concentration_mg_cm3"], "hu": round(r["hu"], 2),
                          "sd_hu": round(r["sd_hu"], 2), "voxels": r["voxels"], "radius_mm": r["radius_mm"]}
                         for r in cal["rods"]]}
        else:
            res["calibration_note"] = why
    return res, _figures(hu, spacing, labels, mask, roi, vals, mean, cal, res)


def _figures(hu, spacing, labels, mask, roi, vals, mean, cal, res):
    figs = []
    xs, ys, zs = np.nonzero(roi)
    kx, ky, kz = int(np.median(xs)), int(np.median(ys)), int(np.median(zs))
    masks = [(mask, (60, 200, 60), "outline"), (roi, (255, 220, 0), "fill")]
    if cal:
        for r in cal["rods"]:
            masks.append((np.repeat(r["disc"][:, :, None], hu.shape[2], axis=2), (0, 200, 230), "fill"))
        masks.append((np.repeat(cal["pad_mask"][:, :, None], hu.shape[2], axis=2), (60, 120, 255), "outline"))
    figs.append(("Axial slice at mid-L1 (anterior up, patient's right on the left): L1 outlined in green, the "
                 "trabecular ROI in yellow" + (", calibration rods in cyan, phantom outlined in blue" if cal else ""),
                 imaging.overlay_slice(hu, spacing, 2, kz, masks=masks)))
    figs.append(("Sagittal slice through the ROI (anterior on the left): vertebral bodies tinted by level, L1 "
                 "stronger, ROI in yellow", imaging.overlay_slice(hu, spacing, 0, kx, labels=labels, highlight=B.L1_CODE,
                                                                  masks=masks[:2])))
    figs.append(("Coronal slice through the ROI (patient's right on the left)",
                 imaging.overlay_slice(hu, spacing, 1, ky, labels=labels, highlight=B.L1_CODE, masks=masks[:2])))
    figs.append((f"Histogram of ROI attenuation (HU): mean {mean:.1f} HU (blue); Pickhardt thresholds 110 HU (red) "
                 f"and 160 HU (orange)",
                 imaging.histogram_png(vals, vlines=[(B.PICKHARDT_LIKELY_MAX_HU, (204, 51, 17)),
                                                     (B.PICKHARDT_UNLIKELY_ABOVE_HU, (238, 119, 51)),
                                                     (mean, (0, 68, 136))])))
    if cal:
        conc = [r["concentration_mg_cm3"] for r in cal["rods"]]
        figs.append((f"Calibration: rod HU (blue) against K2HPO4 concentration (mg/cm³), fit HU = "
                     f"{cal['intercept_hu']:.1f} + {cal['slope_hu_per_mg_cm3']:.3f}·c (grey); L1 (red square) at "
                     f"{res['bmd_mg_cm3']:.1f} mg/cm³",
                     imaging.scatter_fit_png(conc, [r["hu"] for r in cal["rods"]], cal["slope_hu_per_mg_cm3"],
                                             cal["intercept_hu"], extra=(res["bmd_mg_cm3"], mean),
                                             xlabel="K2HPO4 mg/cm³", ylabel="HU")))
    return figs


def find_label_map(volume, labels_dir):
    """The label map of VOLUME: in labels_dir (mirrored tree or flat; NAME_seg or NAME), else NAME_seg beside."""
    candidates = []
    if labels_dir:
        for d in (os.path.join(labels_dir, volume.reldir), labels_dir):
            for stem in (volume.name + "_seg", volume.name):
                candidates += [os.path.join(d, stem + ext) for ext in (".nii.gz", ".nii")]
    else:
        d = os.path.dirname(volume.path)
        candidates += [os.path.join(d, volume.name + "_seg" + ext) for ext in (".nii.gz", ".nii")]
    for c in candidates:
        if os.path.isfile(c) and os.path.abspath(c) != os.path.abspath(volume.path):
            return c
    return None
