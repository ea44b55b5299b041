#!/usr/bin/env python3
"""Write synthetic CT studies with planted identifiers, plus a truth file.

  python3 scripts/testbed/synth-ct.py OUTDIR [--patients 2] [--slices 24] [--rows 48] [--cols 40]
      [--seed 1] [--transfer-syntax explicit-le|implicit-le|explicit-be] [--no-extras]

Test data for the DICOM anonymiser. Every run with the same arguments writes the
same bytes: UIDs are 2.25.<name-based UUID (uuid5) of the seed and a label>,
all "random" values come from random.Random(seed), and nothing reads the clock.

Per patient, one study (CT Image Storage) with two axial series sharing one
FrameOfReferenceUID:
  series 1  plain axial: ImageOrientationPatient 1\\0\\0\\0\\1\\0, no tilt.
  series 2  gantry tilt +12 deg: ImageOrientationPatient 1\\0\\0\\0\\cos t\\-sin t
            (the convention of real GE tilted CT, e.g. dcm_qa_ct), positions
            advancing along z only, by SpacingBetweenSlices / cos t, so that the
            distance between the tilted planes is SpacingBetweenSlices.
Pixel spacing 0.8 mm, slice spacing 2.5 mm. InstanceNumber = s + 1 (ascending z):
with top-down numbering dcm2niix (v1.0.20260724) shifts the origin of the tilted
series by the whole shear (12.2 mm for 24 slices), though its voxels are the same.
Unless --no-extras, one Secondary Capture "screenshot" per patient
(ConversionType WSD, BurnedInAnnotation YES, own series), which the anonymiser
must quarantine rather than clean.

Pixels are an analytic phantom so a NIfTI conversion can be checked voxel by voxel:
  HU(col, row, s) = -1000 + 3*col + 5*row + 7*s     (s = 0 is the lowest-z slice)
  stored int16 = HU + 1024, RescaleIntercept -1024, RescaleSlope 1.

Planted identifiers (each a distinct string, most of the form <XX>PLANTED<hex>,
and all listed per patient in truth.json under "planted"): names (patient,
mother's birth name, referring/performing physician, operator), PatientID, its
issuer, OtherPatientIDsSequence, address, telephone, birth date, institution
name/address/department, station name, device serial, accession number,
StudyID, study/series descriptions, ImageComments and AdditionalPatientHistory
(free text containing the patient name), RequestAttributesSequence (requested
procedure / step IDs, ReferencedStudySequence -> original StudyInstanceUID),
the study date, and all original UIDs. A private block (0009,0010) "ACME PLANTED
1.0" carries the name in (0009,1001) LO and the PatientID as raw bytes in
(0009,1002) UN. PatientAge/Sex/Weight/Size are recorded (not planted), so tests
can check what the anonymiser keeps.

Output: OUTDIR/fNNNN.dcm (names assigned in a seeded random order, so directory
order says nothing about slices) and OUTDIR/truth.json. OUTDIR must be empty or
absent. Explicit VR big endian is written by pydicom directly (pixel data is
byte-swapped here; pydicom does not swap OW values itself).
"""
import argparse
import datetime
import json
import math
import os
import random
import sys
import uuid

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

SYNTAXES = {
    "explicit-le": ("1.2.840.10008.1.2.1", True),
    "implicit-le": ("1.2.840.10008.1.2", True),
    "explicit-be": ("1.2.840.10008.1.2.2", False),
}
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"
SC_SOP = "1.2.840.10008.5.1.4.1.1.7"
STUDY_SOP = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management, the class used in ReferencedStudySequence


def make_uid(*label):
    """A deterministic UID: 2.25. + the integer of a name-based (SHA-1) UUID."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'synth-ct:' + '/'.join(label)).int}"


IMPL_UID = make_uid("implementation")
PRIVATE_CREATOR = "ACME PLANTED 1.0"
PIXEL_MM, SLICE_MM, TILT_DEG, Z0 = 0.8, 2.5, 12.0, -150.0
# Keys of make_patient() whose values are planted; OtherPatientID/OtherIssuer live in OtherPatientIDsSequence,
# RequestedProcedureID/ScheduledProcedureStepID in RequestAttributesSequence.
PLANTED_FIELDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "OtherPatientID", "OtherIssuer", "PatientAddress",
    "PatientTelephoneNumbers", "PatientBirthDate", "PatientMotherBirthName", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName",
    "StationName", "DeviceSerialNumber", "AccessionNumber", "StudyID", "RequestedProcedureID",
    "ScheduledProcedureStepID", "StudyDate", "StudyDescription", "AdditionalPatientHistory", "StudyInstanceUID",
    "FrameOfReferenceUID")
FORMULA = "HU(col,row,s) = -1000 + 3*col + 5*row + 7*s; stored int16 = HU + 1024"


def ds_str(v):
    """A DS value string: at most 16 characters, no '-0'."""
    s = f"{v:.10g}"
    return "0" if s == "-0" else s


class Planter:
    """Hands out distinctive strings that never repeat within one run."""

    def __init__(self, rng):
        self.rng, self.seen = rng, set()

    def token(self):
        while True:
            t = f"{self.rng.getrandbits(24):06X}"
            if t not in self.seen:
                self.seen.add(t)
                return t

    def tag(self, prefix):  # <= 16 characters, fits SH
        return f"{prefix}PLANTED{self.token()}"

    def date(self, lo, hi):
        while True:
            day = datetime.date(lo, 1, 1) + datetime.timedelta(days=self.rng.randrange((hi - lo) * 365))
            d = day.strftime("%Y%m%d")
            if d not in self.seen:
                self.seen.add(d)
                return d


def make_patient(i, pl, seed):
    def uid(*label):
        return make_uid(f"seed={seed}", f"patient={i}", *label)

    female = i % 2 == 0
    last, first = ("DOE", "JANE") if female else ("ROE", "JOHN")
    name = f"{last}^{first}^PLANTED{pl.token()}"
    birth, study = pl.date(1940, 1980), pl.date(2023, 2025)
    b, s = (datetime.datetime.strptime(x, "%Y%m%d").date() for x in (birth, study))
    age = s.year - b.year - ((s.month, s.day) < (b.month, b.day))
    return dict(
        PatientName=name, PatientID=pl.tag("ID"), IssuerOfPatientID=pl.tag("IS"),
        OtherPatientID=pl.tag("OI"), OtherIssuer=pl.tag("OS"),
        PatientAddress=f"{pl.token()} PLANTED LANE, SPRINGFIELD", PatientTelephoneNumbers=pl.tag("TP"),
        PatientBirthDate=birth, PatientMotherBirthName=f"MOTHER^MAIDEN^PLANTED{pl.token()}",
        InstitutionName=f"ST PLANTED HOSPITAL {pl.token()}",
        InstitutionAddress=f"{pl.token()} PLANTED ROAD, SHELBYVILLE",
        InstitutionalDepartmentName=f"RADIOLOGY PLANTED {pl.token()}",
        ReferringPhysicianName=f"REFERRER^RITA^PLANTED{pl.token()}",
        PerformingPhysicianName=f"PERFORMER^PAUL^PLANTED{pl.token()}",
        OperatorsName=f"OPERATOR^OLGA^PLANTED{pl.token()}", StationName=pl.tag("ST"), DeviceSerialNumber=pl.tag("SN"),
        AccessionNumber=pl.tag("AC"), StudyID=pl.tag("SI"), RequestedProcedureID=pl.tag("RP"),
        ScheduledProcedureStepID=pl.tag("SP"), StudyDate=study, StudyTime=f"{9 + i % 8:02d}{17 + i % 40:02d}31",
        StudyDescription=f"CT ABDOMEN for {name}", AdditionalPatientHistory=f"Patient {name} reports abdominal pain.",
        PatientAge=f"{age:03d}Y", PatientSex="F" if female else "M",
        PatientWeight=ds_str(round(55 + 30 * pl.rng.random(), 1)),
        PatientSize=ds_str(round(1.55 + 0.3 * pl.rng.random(), 2)),
        StudyInstanceUID=uid("study"), FrameOfReferenceUID=uid("for"), uid=uid,
    )


def base_dataset(p, sop_class, sop_uid, series_uid, series_no, series_desc, series_time, time):
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
    for k in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, k, p["StudyDate"])
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = p["StudyTime"], series_time, time, time
    ds.AccessionNumber = p["AccessionNumber"]
    ds.Manufacturer, ds.ManufacturerModelName = "ACME", "SynthScan 64"
    for k in ("InstitutionName", "InstitutionAddress", "ReferringPhysicianName", "StationName", "StudyDescription",
              "InstitutionalDepartmentName", "PerformingPhysicianName", "OperatorsName"):
        setattr(ds, k, p[k])
    ds.SeriesDescription = series_desc
    for k in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex", "PatientAge",
              "PatientSize", "PatientWeight", "PatientAddress", "PatientMotherBirthName", "PatientTelephoneNumbers",
              "AdditionalPatientHistory", "DeviceSerialNumber", "StudyInstanceUID", "StudyID"):
        setattr(ds, k, p[k])
    other = Dataset()
    other.PatientID, other.IssuerOfPatientID, other.TypeOfPatientID = p["OtherPatientID"], p["OtherIssuer"], "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.SoftwareVersions = "synth-ct 1"
    ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, series_no
    ds.ImageComments = f"Scanned for {p['PatientName']}"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = STUDY_SOP, p["StudyInstanceUID"]
    req = Dataset()
    req.RequestedProcedureID, req.ScheduledProcedureStepID = p["RequestedProcedureID"], p["ScheduledProcedureStepID"]
    req.ReferencedStudySequence = Sequence([ref])
    ds.RequestAttributesSequence = Sequence([req])
    block = ds.private_block(0x0009, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", p["PatientName"])
    blob = p["PatientID"].encode("ascii")
    block.add_new(0x02, "UN", blob + b"\0" * (len(blob) % 2))
    return ds


def ct_slice(p, s, series_no, tilt, rows, cols, series_uid, sop_uid, big_endian):
    t = math.radians(tilt)
    x0, y0 = -(cols - 1) * PIXEL_MM / 2, -(rows - 1) * PIXEL_MM / 2
    z = Z0 + s * SLICE_MM / math.cos(t)
    desc = f"AXIAL {SLICE_MM} mm{' TILT' if tilt else ''} {p['PatientName']}"
    ds = base_dataset(p, CT_SOP, sop_uid, series_uid, series_no, desc, f"{10 + series_no:02d}0000",
                      f"{10 + series_no:02d}{(s + 1) // 60 % 60:02d}{(s + 1) % 60:02d}")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.Modality, ds.BodyPartExamined, ds.PatientPosition = "CT", "ABDOMEN", "HFS"
    ds.ScanOptions, ds.KVP, ds.XRayTubeCurrent, ds.ExposureTime = "AXIAL MODE", "120", 250, 1000
    ds.SliceThickness = ds.SpacingBetweenSlices = ds_str(SLICE_MM)
    ds.DataCollectionDiameter = ds.ReconstructionDiameter = ds_str(max(rows, cols) * PIXEL_MM)
    ds.GantryDetectorTilt, ds.ConvolutionKernel, ds.AcquisitionNumber = ds_str(tilt), "STANDARD", 1
    ds.InstanceNumber = s + 1
    ds.ImagePositionPatient = [ds_str(x0), ds_str(y0), ds_str(z)]
    ds.ImageOrientationPatient = [ds_str(v) for v in (1, 0, 0, 0, math.cos(t), -math.sin(t))]
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = p["FrameOfReferenceUID"], ""
    ds.SliceLocation = ds_str(z)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", rows, cols
    ds.PixelSpacing = [ds_str(PIXEL_MM), ds_str(PIXEL_MM)]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.BurnedInAnnotation = "NO"
    ds.WindowCenter, ds.WindowWidth = "40", "400"
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
    row, col = np.mgrid[0:rows, 0:cols]
    hu = -1000 + 3 * col + 5 * row + 7 * s
    ds.PixelData = (hu + 1024).astype(">i2" if big_endian else "<i2").tobytes()
    return ds, [float(ds_str(v)) for v in (x0, y0, z)]


def screenshot(p, series_uid, sop_uid):
    ds = base_dataset(p, SC_SOP, sop_uid, series_uid, 99, f"SCREEN SAVE {p['PatientName']}", "130000", "130000")
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Modality, ds.ConversionType, ds.BurnedInAnnotation, ds.InstanceNumber = "OT", "WSD", "YES", 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 32, 64
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    img = np.tile(np.arange(64, dtype=np.uint8) * 2, (32, 1))
    img[4:12, 4:60] = 255  # a white "text" band, standing in for burned-in demographics
    ds.PixelData = img.tobytes()
    return ds


def write(path, ds, ts_uid):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID, meta.ImplementationClassUID = ts_uid, IMPL_UID
    meta.ImplementationVersionName = "SYNTHCT_1"
    ds.file_meta, ds.preamble = meta, b"\0" * 128
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--patients", type=int, default=2)
    ap.add_argument("--slices", type=int, default=24)
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--cols", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--transfer-syntax", choices=sorted(SYNTAXES), default="explicit-le")
    ap.add_argument("--no-extras", action="store_true", help="no Secondary Capture screenshots")
    a = ap.parse_args(argv)
    if a.patients < 1 or a.slices < 3 or a.rows < 2 or a.cols < 2:
        ap.error("need --patients >= 1, --slices >= 3, --rows and --cols >= 2")
    if -1000 + 3 * (a.cols - 1) + 5 * (a.rows - 1) + 7 * (a.slices - 1) + 1024 > 32767:
        ap.error("phantom values would overflow int16; use fewer rows/cols/slices")
    if os.path.exists(a.outdir) and os.listdir(a.outdir):
        ap.error(f"{a.outdir} is not empty")
    os.makedirs(a.outdir, exist_ok=True)
    ts_uid, little = SYNTAXES[a.transfer_syntax]

    rng = random.Random(a.seed)
    pl = Planter(rng)
    per_patient = 2 * a.slices + (0 if a.no_extras else 1)
    order = list(range(a.patients * per_patient))
    rng.shuffle(order)
    width = max(4, len(str(len(order))))
    names = iter(f"f{k + 1:0{width}d}.dcm" for k in order)

    truth = {"generator": "scripts/testbed/synth-ct.py", "seed": a.seed,
             "transfer_syntax": {"name": a.transfer_syntax, "uid": ts_uid},
             "phantom": {"formula": FORMULA, "s": "0-based slice index, 0 = lowest z (most inferior)",
                         "col_row": "0-based column (along the row direction) and row of the DICOM image",
                         "RescaleIntercept": -1024, "RescaleSlope": 1},
             "series_notes": {"files": "files[i] and SOPInstanceUIDs[i] are slice s = i (InstanceNumber i + 1)",
                              "origin": "ImagePositionPatient of slice s = 0 (LPS, mm)",
                              "slice_spacing": "distance between slice planes (SpacingBetweenSlices)",
                              "z_step": "z advance of ImagePositionPatient per slice = slice_spacing / cos(tilt)"},
             "private_creator": PRIVATE_CREATOR, "patients": []}
    for i in range(a.patients):
        p = make_patient(i, pl, a.seed)
        uid = p.pop("uid")
        fields = {k: p[k] for k in PLANTED_FIELDS}
        fields["ImageComments"] = f"Scanned for {p['PatientName']}"
        planted = list(fields.values())
        entry = {k: p[k] for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientAge", "PatientSex",
                                   "StudyDate", "StudyInstanceUID", "FrameOfReferenceUID")}
        entry["PatientWeight"], entry["PatientSize"] = float(p["PatientWeight"]), float(p["PatientSize"])
        entry["planted_fields"], entry["series"] = fields, []
        for series_no, tilt in ((1, 0.0), (2, TILT_DEG)):
            series_uid = uid("series", str(series_no))
            t = math.radians(tilt)
            ser = {"SeriesNumber": series_no, "SeriesInstanceUID": series_uid, "instances": a.slices,
                   "orientation": [1.0, 0.0, 0.0, 0.0, float(ds_str(math.cos(t))), float(ds_str(-math.sin(t)))],
                   "pixel_spacing": [PIXEL_MM, PIXEL_MM], "slice_spacing": SLICE_MM,
                   "z_step": float(ds_str(SLICE_MM / math.cos(t))), "tilt": tilt, "origin": None,
                   "files": [], "SOPInstanceUIDs": []}
            for s in range(a.slices):
                sop_uid = uid("sop", str(series_no), str(s))
                ds, ipp = ct_slice(p, s, series_no, tilt, a.rows, a.cols, series_uid, sop_uid, not little)
                name = next(names)
                write(os.path.join(a.outdir, name), ds, ts_uid)
                ser["origin"] = ser["origin"] or ipp
                ser["files"].append(name)
                ser["SOPInstanceUIDs"].append(sop_uid)
            ser["SeriesDescription"] = ds.SeriesDescription
            planted += [series_uid, ds.SeriesDescription] + ser["SOPInstanceUIDs"]
            entry["series"].append(ser)
        entry["screenshot"] = None
        if not a.no_extras:
            series_uid, sop_uid = uid("series", "99"), uid("sop", "99", "0")
            ds = screenshot(p, series_uid, sop_uid)
            name = next(names)
            write(os.path.join(a.outdir, name), ds, ts_uid)
            entry["screenshot"] = {"file": name, "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid,
                                   "SOPClassUID": SC_SOP}
            planted += [series_uid, sop_uid, ds.SeriesDescription]
        entry["planted"] = list(dict.fromkeys(planted))
        truth["patients"].append(entry)
    with open(os.path.join(a.outdir, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
