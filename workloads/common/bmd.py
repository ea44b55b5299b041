"""Published bone-density thresholds, in one place for the analysis, the phantom truth and the tests.

Opportunistic CT (Pickhardt et al., Ann Intern Med 2013;158:588-595, 2,067 CT-DXA pairs): L1 trabecular
attenuation <= 110 HU is > 90 % specific for osteoporosis, <= 160 HU is 90 % sensitive, so
  <= 110 HU  osteoporosis likely;  > 160 HU  osteoporosis unlikely;  in between  indeterminate.
QCT with a calibration phantom (ACR-SPR-SSR practice parameter for QCT, 2018; ISCD): volumetric trabecular
BMD of the lumbar spine  < 80 mg/cm3 osteoporosis,  80-120 osteopenia,  > 120 normal.
"""

PICKHARDT_LIKELY_MAX_HU = 110.0
PICKHARDT_UNLIKELY_ABOVE_HU = 160.0
QCT_OSTEOPOROSIS_BELOW = 80.0
QCT_NORMAL_ABOVE = 120.0

# VerSe challenge codes for the vertebrae a label map may carry (C1-C7 1-7, T1-T12 8-19,
# L1-L5 20-24). Label maps written by the workloads use these codes; 1..7 are never used for bodies here.
LEVEL_CODES = {**{f"T{i}": 7 + i for i in range(1, 13)}, **{f"L{i}": 19 + i for i in range(1, 6)}}
CODE_LEVELS = {code: name for name, code in LEVEL_CODES.items()}
L1_CODE = LEVEL_CODES["L1"]


def pickhardt_band(hu):
    """The Pickhardt 2013 band of an L1 trabecular attenuation (HU)."""
    if hu <= PICKHARDT_LIKELY_MAX_HU:
        return "osteoporosis_likely"
    if hu > PICKHARDT_UNLIKELY_ABOVE_HU:
        return "osteoporosis_unlikely"
    return "indeterminate"


def qct_category(bmd_mg_cm3):
    """The QCT category of a volumetric trabecular BMD (mg/cm3 K2HPO4-equivalent)."""
    if bmd_mg_cm3 < QCT_OSTEOPOROSIS_BELOW:
        return "osteoporosis"
    if bmd_mg_cm3 > QCT_NORMAL_ABOVE:
        return "normal"
    return "osteopenia"
