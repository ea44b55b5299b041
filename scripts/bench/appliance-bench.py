#!/usr/bin/env python3
"""Appliance build and push: deployctl against umoci + skopeo on the same input, side by side, in one run.

usage: appliance-bench.py [DEPLOYCTL] [--size-mb 1024] [--runs 3]

Writes an input tree of SIZE MB (half incompressible bytes, half text, in 64 files — like a Python stack), then:
  deployctl appliance build (gzip, then zstd) and appliance push to a local docker-registry, and
  umoci init/new/insert (its gzip) and skopeo copy to the same registry.
Each step is a fresh process, timed, with its peak RSS from wait4; the three builds run --runs times, taking turns
(so a noisy neighbour slows each alike), and count with their median time and their highest RSS. Prints MB/s of input, the ratios against
umoci's build, skopeo's push, and the targets: zstd build >= 3x umoci's, gzip build no slower than umoci's, peak
memory under 100 MB. Standard library only; needs docker-registry, umoci and skopeo (make deps)."""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchlib import timed

REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def make_tree(root, size_mb):
    root.mkdir(parents=True)
    chunk = (size_mb << 20) // 64
    text = (b"def measure(volume, roi):\n    return volume[roi].mean()  # trabecular HU\n" * 4096)
    for index in range(64):
        with open(root / f"part-{index:02d}.bin", "wb") as out:
            if index % 2 == 0:
                out.write(os.urandom(chunk))
            else:
                written = 0
                while written < chunk:
                    piece = text[: chunk - written]
                    out.write(piece)
                    written += len(piece)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("deployctl", nargs="?", default=str(REPO_ROOT / ".build/release/deployctl"))
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3, help="runs of each build (median time, highest RSS)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="appliance-bench-"))
    registry = None
    try:
        make_tree(work / "tree", args.size_mb)
        port = free_port()
        (work / "registry.yml").write_text(
            f"version: 0.1\nlog: {{ level: error }}\nstorage:\n  filesystem: {{ rootdirectory: {work}/registry }}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")
        registry = subprocess.Popen(["docker-registry", "serve", str(work / "registry.yml")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        rows = {}
        layout = work / "umoci"
        builds = {}
        for compression in ["gzip", "zstd"]:
            (work / f"{compression}.yaml").write_text(
                f"name: bench\ncompression: {compression}\nlayers:\n  - directory: tree\n    to: /opt/data\n")
        for _ in range(args.runs):
            for compression in ["gzip", "zstd"]:
                shutil.rmtree(work / f"out-{compression}", ignore_errors=True)
                builds.setdefault(f"deployctl build ({compression})", []).append(timed(
                    [args.deployctl, "appliance", "build", str(work / f"{compression}.yaml"), "--output",
                     str(work / f"out-{compression}"), "--tag", "v1"]))
            shutil.rmtree(layout, ignore_errors=True)
            subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
            subprocess.run(["umoci", "new", "--image", f"{layout}:v1"], check=True)
            builds.setdefault("umoci insert (gzip)", []).append(timed(
                ["umoci", "insert", "--rootless", "--image", f"{layout}:v1", str(work / "tree"), "/opt/data"]))
        for name, results in builds.items():
            rows[name] = (statistics.median(seconds for seconds, _ in results), max(rss for _, rss in results))
        rows["deployctl push (gzip)"] = timed(
            [args.deployctl, "appliance", "push", str(work / "out-gzip"), f"127.0.0.1:{port}/bench/deployctl:v1",
             "--tag", "v1", "--insecure", "--format", "json"])
        rows["skopeo copy (push)"] = timed(
            ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}:v1",
             f"docker://127.0.0.1:{port}/bench/umoci:v1"])
    finally:
        if registry:
            registry.kill()
        shutil.rmtree(work, ignore_errors=True)
    size = args.size_mb
    print(f"appliance build and push of a {size} MB tree (half random, half text), this machine; "
          f"builds: median of {args.runs}")
    print(f"{'step':<26} {'seconds':>8} {'MB/s':>8} {'peak RSS MiB':>13}")
    for name, (seconds, rss) in rows.items():
        print(f"{name:<26} {seconds:>8.2f} {size / seconds:>8.1f} {rss:>13.1f}")
    umoci = rows["umoci insert (gzip)"][0]
    zstd = umoci / rows["deployctl build (zstd)"][0]
    gzip = umoci / rows["deployctl build (gzip)"][0]
    push = rows["skopeo copy (push)"][0] / rows["deployctl push (gzip)"][0]
    peak = max(rss for name, (_, rss) in rows.items() if name.startswith("deployctl"))
    print(f"zstd build {zstd:.2f}x umoci's (target >= 3x): {'met' if zstd >= 3 else 'NOT met'}")
    print(f"gzip build {gzip:.2f}x umoci's (target >= 1x): {'met' if gzip >= 1 else 'NOT met'}")
    print(f"push {push:.2f}x skopeo's; deployctl peak RSS {peak:.1f} MiB (target < 100): "
          f"{'met' if peak < 100 else 'NOT met'}")


main()
