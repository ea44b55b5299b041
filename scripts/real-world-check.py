#!/usr/bin/env python3
"""Robustness check on real-world TOSCA templates.

Runs `deployctl validate --format json` over every YAML file under the given directories that declares
tosca_definitions_version, one cold process each with a time limit, and reports: how many were valid or invalid,
crashes (a signal or an exit code other than 0/1/2), time-outs, wall-time median/p95/max, and the error codes found
in the templates themselves (as opposed to in the types files they import).

The templates are not part of this repository: point it at checkouts of e.g. grycap/tosca,
indigo-dc/tosca-templates, indigo-dc/tosca-types and openstack/tosca-parser's samples, with an import map that
resolves their URL imports to local files (`--import-map`).

    scripts/real-world-check.py DIR... [--import-map FILE] [--deployctl PATH] [--timeout S]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time


def tosca_files(directories):
    for directory in directories:
        for root, _, names in os.walk(directory):
            for name in sorted(names):
                if not name.endswith((".yaml", ".yml")):
                    continue
                path = os.path.join(root, name)
                try:
                    with open(path, encoding="utf-8", errors="replace") as handle:
                        if "tosca_definitions_version" in handle.read(200_000):
                            yield path
                except OSError:
                    continue


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+")
    parser.add_argument("--import-map")
    parser.add_argument("--deployctl", default=os.environ.get("DEPLOYCTL", ".build/release/deployctl"))
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    if not os.access(args.deployctl, os.X_OK):
        sys.exit(f"error: {args.deployctl} is not built; run `swift build -c release` first")

    verdicts = collections.Counter()
    own_codes = collections.Counter()
    imported_codes = collections.Counter()
    times = []
    problems = []
    for path in tosca_files(args.directories):
        command = [args.deployctl, "validate", "--format", "json", path]
        if args.import_map:
            command += ["--import-map", args.import_map]
        start = time.perf_counter()
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            verdicts["timeout"] += 1
            problems.append(f"timeout  {path}")
            continue
        times.append((time.perf_counter() - start) * 1000)
        if run.returncode not in (0, 1, 2):
            verdicts["crash"] += 1
            problems.append(f"exit {run.returncode}  {path}")
            continue
        verdicts[{0: "valid", 1: "invalid", 2: "io-error"}[run.returncode]] += 1
        try:
            report = json.loads(run.stdout)
        except json.JSONDecodeError:
            verdicts["bad-json"] += 1
            problems.append(f"unparsable JSON  {path}")
            continue
        for diagnostic in report["files"][0]["diagnostics"]:
            if diagnostic["severity"] != "error":
                continue
            own = os.path.normpath(diagnostic.get("file", "")) == os.path.normpath(path)
            (own_codes if own else imported_codes)[diagnostic["code"]] += 1

    total = sum(verdicts.values())
    times.sort()
    print(f"{total} templates: " + ", ".join(f"{count} {kind}" for kind, count in verdicts.most_common()))
    if times:
        median = times[len(times) // 2]
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"wall time per cold validate: median {median:.1f} ms, p95 {p95:.1f} ms, max {times[-1]:.1f} ms")
    print("errors in the templates themselves:", ", ".join(f"{code} {n}" for code, n in own_codes.most_common(12)))
    print("errors in imported files:", ", ".join(f"{code} {n}" for code, n in imported_codes.most_common(8)) or "none")
    for line in problems:
        print("  " + line)
    crashed = verdicts["crash"] + verdicts["timeout"] + verdicts["bad-json"]
    print(f"{total - crashed} passed, {crashed} failed")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
