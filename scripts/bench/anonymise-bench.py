#!/usr/bin/env python3
"""Anonymisation throughput and memory: deployctl against PyPI's dicom-anonymizer, side by side, in one run.

usage: anonymise-bench.py [DEPLOYCTL] [--rows 512] [--cols 512] [--slices 60] [--patients 1,4] [--repeat 3]

For each study count, synth-ct.py writes the same synthetic CT studies (2 series of SLICES slices per patient,
ROWS x COLS, planted identifiers); then each tool anonymises the whole directory, as a fresh process, REPEAT
times in turns (medians reported):
  deployctl volume stage --no-nifti (anonymise, write Part 10, sha256 every file, manifest), and
  dicom-anonymizer IN OUT (pydicom; installed into scripts/bench/.venv from PyPI).
Prints instances/s for both, the ratio (target >= 20x) and each process's peak RSS (from wait4), which must stay
flat as the number of studies grows. Standard library only, apart from the venv."""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchlib import timed

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
VENV_DIR = BENCH_DIR / ".venv"
TARGET_RATIO = 20.0


def ensure_venv():
    anonymizer = VENV_DIR / "bin" / "dicom-anonymizer"
    if not anonymizer.exists():
        if not (VENV_DIR / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV_DIR)], check=True)
        subprocess.run([str(VENV_DIR / "bin" / "pip"), "install", "-q", "dicom-anonymizer"], check=True)
    return anonymizer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("deployctl", nargs="?", default=str(REPO_ROOT / ".build/release/deployctl"))
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--cols", type=int, default=512)
    parser.add_argument("--slices", type=int, default=60)
    parser.add_argument("--patients", default="1,4")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    anonymizer = ensure_venv()
    work = Path(tempfile.mkdtemp(prefix="anonymise-bench-"))
    secret = work / "secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    rows = []
    try:
        for patients in [int(p) for p in args.patients.split(",")]:
            study = work / f"in-{patients}"
            subprocess.run(
                [sys.executable, str(REPO_ROOT / "scripts/testbed/synth-ct.py"), str(study), "--patients",
                 str(patients), "--slices", str(args.slices), "--rows", str(args.rows), "--cols", str(args.cols),
                 "--no-extras"], check=True, stdout=subprocess.DEVNULL)
            instances = len(list(study.glob("*.dcm")))
            ids = []
            truth = json.loads((study / "truth.json").read_text())
            for patient in truth["patients"]:
                ids += ["--patient-id", patient["PatientID"]]
            env = dict(os.environ, DEPLOYCTL_HOME=str(work / f"home-{patients}"))
            our_runs, their_runs = [], []
            for attempt in range(args.repeat):
                volume = work / f"vol-{patients}-{attempt}"
                our_runs.append(timed(
                    [args.deployctl, "volume", "stage", "--name", f"bench-{patients}-{attempt}", "--output",
                     str(volume), "--from-dir", str(study), *ids, "--secret-file", str(secret), "--no-nifti",
                     "--format", "json"], env=env))
                out = work / f"anon-{patients}-{attempt}"
                out.mkdir()
                their_runs.append(timed([str(anonymizer), str(study), str(out)]))
                shutil.rmtree(out)
                shutil.rmtree(volume, ignore_errors=True)
            ours, our_rss = statistics.median(r[0] for r in our_runs), max(r[1] for r in our_runs)
            theirs, their_rss = statistics.median(r[0] for r in their_runs), max(r[1] for r in their_runs)
            rows.append((patients, instances, instances / ours, instances / theirs, theirs / ours, our_rss,
                         their_rss))
            shutil.rmtree(study)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)])
        shutil.rmtree(work, ignore_errors=True)
    print(f"anonymisation, {args.rows}x{args.cols} CT slices, {args.slices} per series, 2 series per patient; "
          f"medians of {args.repeat} runs, peak RSS the largest")
    print(f"{'patients':>8} {'instances':>9} {'deployctl/s':>12} {'dicom-anonymizer/s':>19} {'ratio':>7} "
          f"{'deployctl MiB':>13} {'dicom-anonymizer MiB':>20}")
    for patients, instances, ours, theirs, ratio, our_rss, their_rss in rows:
        print(f"{patients:>8} {instances:>9} {ours:>12.0f} {theirs:>19.1f} {ratio:>6.1f}x {our_rss:>13.1f} "
              f"{their_rss:>20.1f}")
    worst = min(row[4] for row in rows)
    growth = rows[-1][5] / rows[0][5] if len(rows) > 1 else 1.0
    print(f"ratio {worst:.1f}x (target >= {TARGET_RATIO:.0f}x): {'met' if worst >= TARGET_RATIO else 'NOT met'}; "
          f"deployctl peak RSS grows {growth:.2f}x from {rows[0][0]} to {rows[-1][0]} patients")


main()
