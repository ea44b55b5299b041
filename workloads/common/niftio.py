"""Finding, reading and writing the CT volumes of a data volume (numpy and nibabel only).

Input layouts (both workloads):
  - the staged data volume written by `deployctl volume stage`:
      INPUT/<patient>/<study uid>/<series uid>/nifti/<P>_<series number>.nii.gz  (+ .json sidecar from dcm2niix)
      INPUT/<patient>/<study uid>/<series uid>/dicom/*.dcm                       (the anonymised DICOM)
  - or any tree (flat included) of *.nii / *.nii.gz.
Every *.nii[.gz] under INPUT is a candidate, except label maps (*_seg.nii[.gz]), and:
  - dcm2niix's corrected copies win: when both X.nii.gz and X_Tilt_1.nii.gz (gantry-tilt corrected) or
    X_Eq_1.nii.gz (equalised slice spacing) are present, X_Tilt_1 / X_Eq_1 is analysed and X is skipped (X's
    voxels are sheared for a tilted series). The sidecar of X_Tilt_1 is X.json (dcm2niix writes one).
  - a sidecar whose Modality is not CT, a volume that is not 3D, or one with fewer than MIN_SLICES slices
    (dcm2niix's Secondary Capture screenshots, scouts) is skipped, with the reason recorded.
Volumes are analysed in RAS+ (nibabel's closest canonical orientation: a permutation and flips of the stored
axes, no resampling); results that are images go back in the input's own geometry.
"""

import json
import os
import re

import numpy as np

MIN_SLICES = 8
_DERIVED = re.compile(r"^(?P<base>.+)_(?P<kind>Tilt|Eq)_\d+$")


def strip_nii(name):
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return None


class Volume:
    """One CT volume found under an input directory."""

    def __init__(self, path, root, sidecar=None, derived=None):
        self.path = path
        self.rel = os.path.relpath(path, root)
        self.name = strip_nii(os.path.basename(path))
        self.reldir = os.path.dirname(self.rel)
        self.sidecar = sidecar
        self.derived = derived  # "Tilt" / "Eq" for dcm2niix's corrected copies

    def __repr__(self):
        return f"Volume({self.rel})"


def find_volumes(root, include=None):
    """(volumes, skipped): the CT volumes under ROOT (sorted by relative path) and [(relpath, reason)].
    INCLUDE: only these relative paths."""
    import nibabel as nib

    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root}: not a directory")
    volumes, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        names = {strip_nii(f): f for f in filenames if strip_nii(f) is not None}
        superseded = {}
        for stem in names:
            m = _DERIVED.match(stem)
            if m and m.group("base") in names:
                superseded[m.group("base")] = names[stem]
        for stem in sorted(names):
            path = os.path.join(dirpath, names[stem])
            rel = os.path.relpath(path, root)
            if include is not None and rel not in include:
                continue
            if stem.endswith("_seg") or stem.endswith("_labels"):
                continue
            if stem in superseded:
                skipped.append((rel, f"superseded by dcm2niix's corrected copy {superseded[stem]}"))
                continue
            m = _DERIVED.match(stem)
            sidecar = None
            for candidate in [stem] + ([m.group("base")] if m else []):
                p = os.path.join(dirpath, candidate + ".json")
                if os.path.isfile(p):
                    sidecar = p
                    break
            meta = read_json(sidecar) if sidecar else {}
            modality = meta.get("Modality")
            if modality and modality != "CT":
                skipped.append((rel, f"modality {modality}, not CT"))
                continue
            try:
                shape = nib.load(path).shape
            except Exception as e:  # unreadable file: report, don't crash the others
                skipped.append((rel, f"not a readable NIfTI ({e})"))
                continue
            dims = [d for d in shape[3:] if d != 1]
            if len(shape) < 3 or dims:
                skipped.append((rel, f"not a 3D volume (shape {tuple(shape)})"))
                continue
            if min(shape[:3]) < MIN_SLICES:
                skipped.append((rel, f"too few slices for a CT volume (shape {tuple(shape)})"))
                continue
            volumes.append(Volume(path, root, sidecar, m.group("kind") if m else None))
    volumes.sort(key=lambda v: v.rel)
    return volumes, skipped


def read_json(path):
    try:
        with open(path) as f:
            value = json.load(f)
        return value if isinstance(value, dict) else {}
    except (OSError, ValueError):
        return {}


class RASImage:
    """A volume in RAS+ (closest canonical): data (float32 or the label dtype), spacing mm, and the way back."""

    def __init__(self, path, dtype=np.float32):
        import nibabel as nib

        img = nib.load(path)
        if len(img.shape) > 3:
            img = nib.funcs.squeeze_image(img)
        self.original = img
        self.original_axcodes = "".join(nib.aff2axcodes(img.affine))
        canonical = nib.as_closest_canonical(img)
        self.affine = canonical.affine
        self.data = np.asarray(canonical.dataobj, dtype=dtype) if dtype is not None else np.asarray(canonical.dataobj)
        self.spacing = tuple(float(s) for s in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))
        rot = self.affine[:3, :3] / np.array(self.spacing)
        self.oblique_deg = float(np.degrees(np.arccos(np.clip(np.min(np.abs(np.diag(rot))), -1, 1))))

    def to_original(self, array_ras):
        """ARRAY_RAS (in this image's RAS+ grid) in the stored axis order of the original file."""
        import nibabel as nib

        ornt = nib.orientations.io_orientation(self.original.affine)
        ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
        return nib.orientations.apply_orientation(array_ras, nib.orientations.ornt_transform(ras, ornt))

    def save_like_original(self, array_ras, path, dtype=np.uint8):
        """Writes ARRAY_RAS with the original file's affine and axis order (a label map "in the input's
        geometry")."""
        import nibabel as nib

        data = np.ascontiguousarray(self.to_original(array_ras)).astype(dtype)
        out = nib.Nifti1Image(data, self.original.affine)
        out.set_sform(self.original.affine, code=int(self.original.header.get("sform_code", 1)) or 1)
        out.set_qform(self.original.affine, code=int(self.original.header.get("qform_code", 1)) or 1)
        out.header.set_xyzt_units("mm")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        nib.save(out, path)


def _dicom_age_years(value):
    m = re.fullmatch(r"\s*(\d{1,3})\s*([DWMY]?)\s*", str(value))
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "Y"
    return round({"Y": n, "M": n / 12, "W": n / 52.18, "D": n / 365.25}[unit], 2)


def patient_characteristics(volume):
    """Age (years), sex, weight (kg), size (m) from the dcm2niix sidecar; when the sidecar lacks them (deployctl
    converts with `dcm2niix -ba y`, which drops them), from the staged series' anonymised DICOM
    (SERIES/dicom/ beside SERIES/nifti/) when pydicom is installed. Returns {} when nothing is known."""
    out, source = {}, None
    meta = read_json(volume.sidecar) if volume.sidecar else {}
    for key, field in (("PatientAge", "age_years"), ("PatientSex", "sex"), ("PatientWeight", "weight_kg"),
                       ("PatientSize", "size_m")):
        if meta.get(key) not in (None, ""):
            out[field] = _dicom_age_years(meta[key]) if key == "PatientAge" else meta[key]
    if out:
        source = "sidecar"
    if len(out) < 4:
        dicom_dir = os.path.join(os.path.dirname(os.path.dirname(volume.path)), "dicom")
        extra = _from_dicom(dicom_dir) if os.path.isdir(dicom_dir) else {}
        for k, v in extra.items():
            if k not in out:
                out[k] = v
                source = "sidecar+dicom" if source == "sidecar" else "dicom"
    if out:
        out["source"] = source
    return out


def _from_dicom(directory):
    try:
        import pydicom
    except ImportError:
        return {}
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True,
                                 specific_tags=["PatientAge", "PatientSex", "PatientWeight", "PatientSize"])
        except Exception:
            continue
        out = {}
        if ds.get("PatientAge"):
            age = _dicom_age_years(ds.PatientAge)
            if age is not None:
                out["age_years"] = age
        if ds.get("PatientSex"):
            out["sex"] = str(ds.PatientSex)
        for tag, field in (("PatientWeight", "weight_kg"), ("PatientSize", "size_m")):
            if ds.get(tag) not in (None, ""):
                try:
                    out[field] = float(ds.get(tag))
                except (TypeError, ValueError):
                    pass
        return out
    return {}
