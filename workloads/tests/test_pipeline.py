"""The study pipeline: its wiring checked before anything runs, a local run end to end on a phantom, and the
SLURM scripts it would submit (GPU request, dependency chain)."""

import json
import subprocess
import sys

import pytest

from conftest import WORKLOADS

PIPELINE = WORKLOADS / "pipeline" / "run"
STUDY = WORKLOADS / "pipeline" / "study.yaml"


def run_pipeline(*args):
    return subprocess.run([sys.executable, str(PIPELINE), *map(str, args)], capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize("steps, message", [
    ("- {name: a, program: bone-density, from: [b], args: ['{input}', '{output}']}\n"
     "- {name: b, program: ct-segmentation, args: ['{input}', '{output}']}", "from 'b': a later step"),
    ("- {name: a, program: bone-density, args: ['{from.z}', '{output}']}", "{from.z} is not wired"),
    ("- {name: a, program: no-such-workload, args: []}", "program 'no-such-workload' is not a workload"),
    ("- {name: a, program: bone-density}\n- {name: a, program: bone-density}", "the name is used twice"),
    ("- {name: a, program: bone-density, resources: {gpu: 1}}", "unknown resource 'gpu'"),
])
def test_bad_wiring_is_refused_before_anything_runs(tmp_path, steps, message):
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("name: x\nsteps:\n" + "\n".join("  " + line for line in steps.splitlines()) + "\n")
    (tmp_path / "in").mkdir()
    proc = run_pipeline(pipeline, tmp_path / "in", tmp_path / "out")
    assert proc.returncode == 2
    assert message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists(), "nothing may run or be written"


def test_the_study_pipeline_runs_end_to_end_here(tmp_path, phantom_factory):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    p = phantom_factory(seed=7011, spacing=(0.9, 0.9, 2.5), l1_trabecular_hu=140)
    p.save(str(tmp_path / "volume"), "scan", labels=False, truth=False)
    proc = run_pipeline(STUDY, tmp_path / "volume", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "segment" / "scan_seg.nii.gz").is_file()
    density = json.loads((tmp_path / "out" / "density" / "summary.json").read_text())["scans"][0]
    assert abs(density["l1_trabecular_hu"] - p.truth["l1_trabecular_hu"]) <= 5.0
    cohort = json.loads((tmp_path / "out" / "cohort" / "summary.json").read_text())
    assert cohort["measured"] == 1 and cohort["failed"] == 0
    assert cohort["pickhardt_bands"] == {p.truth["pickhardt_band"]: 1}
    assert (tmp_path / "out" / "cohort" / "report.html").is_file()


def test_slurm_scripts_request_the_gpu_and_chain_the_steps(tmp_path):
    (tmp_path / "in").mkdir()
    proc = run_pipeline("--slurm", "--dry-run", "--partition", "gpu", STUDY, tmp_path / "in", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("segment: sbatch --parsable ") and "--dependency" not in lines[0]
    assert "--dependency=afterok:<segment>" in lines[1] and "--dependency=afterok:<density>" in lines[2]
    scripts = tmp_path / "out" / ".pipeline"
    segment = (scripts / "segment.sbatch").read_text()
    assert "#SBATCH --gres=gpu:1" in segment and "#SBATCH --partition=gpu" in segment
    assert "ct-segmentation/run" in segment and str(tmp_path / "out" / "segment") in segment
    assert "--gres" not in (scripts / "density.sbatch").read_text()
    assert f"--labels {tmp_path / 'out' / 'segment'}" in (scripts / "density.sbatch").read_text()


def test_set_changes_one_request_and_bad_settings_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    proc = run_pipeline("--slurm", "--dry-run", "--set", "segment.cpus=2", "--set", "segment.memory_mb=8000",
                        "--set", "density.time=00:20:00", STUDY, tmp_path / "in", tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    segment = (tmp_path / "out" / ".pipeline" / "segment.sbatch").read_text()
    assert "#SBATCH --cpus-per-task=2\n" in segment and "#SBATCH --mem=8000M\n" in segment
    assert "#SBATCH --gres=gpu:1\n" in segment, "what --set does not name stays"
    assert "#SBATCH --time=00:20:00\n" in (tmp_path / "out" / ".pipeline" / "density.sbatch").read_text()
    for setting, message in [("segmnt.cpus=2", "no step 'segmnt'"), ("segment.cpu=2", "unknown resource 'cpu'"),
                             ("segment.cpus=two", "cpus is a whole number"), ("segment.cpus", "STEP.RESOURCE=VALUE")]:
        proc = run_pipeline("--slurm", "--dry-run", "--set", setting, STUDY, tmp_path / "in", tmp_path / "bad")
        assert proc.returncode == 2 and message in proc.stderr, (setting, proc.stderr)
        assert not (tmp_path / "bad").exists()
