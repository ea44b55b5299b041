#!/usr/bin/env bash
# Runs `deployctl validate --format json` on every template of the corpus and compares the result with the
# template's first-line expectation:
#
#   # expect: valid              exit code 0 (warnings allowed)
#   # expect: invalid line N     exit code 1 and at least one error diagnostic on line N of that same file
#
# Usage: scripts/corpus-check.sh [DIR]      (DIR defaults to scripts/corpus; templates are DIR/valid/*.yaml and
#                                            DIR/invalid/*.yaml, DIR/lib/ holds imported files and is not checked)
# The binary is $DEPLOYCTL if set, else .build/release/deployctl (relative to the repository root).
# Prints a verdict table, then `N passed, M failed` alone on a line; exits 1 if any template mismatched,
# 2 if the binary or the corpus is missing.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-scripts/corpus}
if [[ $# -eq 0 && ! -d $dir ]]; then
    dir=$repo_root/scripts/corpus
fi
dir=${dir%/}
deployctl=${DEPLOYCTL:-$repo_root/.build/release/deployctl}
per_file_timeout=${CORPUS_TIMEOUT:-60}

if [[ ! -x $deployctl ]]; then
    echo "corpus-check: deployctl binary not found or not executable at '$deployctl'." >&2
    echo "corpus-check: build it with 'swift build -c release' (or 'make release'), or point DEPLOYCTL at it." >&2
    exit 2
fi
if [[ ! -d $dir/valid && ! -d $dir/invalid ]]; then
    echo "corpus-check: no valid/ or invalid/ directory under '$dir'" >&2
    exit 2
fi
command -v python3 >/dev/null || { echo "corpus-check: python3 is needed to read the JSON output" >&2; exit 2; }

run_with_timeout=()
command -v timeout >/dev/null && run_with_timeout=(timeout "$per_file_timeout")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Reads deployctl's JSON on stdin. Arguments: template path, exit code, expected line (or "" when valid is
# expected). Prints two tab-separated fields: the "got" column and the verdict (OK/MISMATCH), then on later lines
# up to three error diagnostics to show under a mismatching row.
judge='
import json, os, sys

template, code, expected_line = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = sys.stdin.read()

def same_file(diag_file):
    if not diag_file:
        return True  # one template per run: a diagnostic without a file belongs to it
    if os.path.realpath(diag_file) == os.path.realpath(template):
        return True
    a, b = os.path.normpath(template), os.path.normpath(diag_file)
    return a.endswith(os.sep + b) or b.endswith(os.sep + a)

errors, parse_problem = [], None
try:
    doc = json.loads(raw) if raw.strip() else None
    if doc is None:
        parse_problem = "no JSON output"
    else:
        for entry in doc.get("files", []):
            for d in entry.get("diagnostics", []) or []:
                if d.get("severity") == "error":
                    errors.append(d)
except (ValueError, AttributeError, TypeError) as e:
    parse_problem = "unreadable JSON: %s" % e

def describe(d):
    where = "%s:%s:%s" % (d.get("file") or "?", d.get("line") or "?", d.get("column") or "?")
    return "%s: %s [%s]" % (where, d.get("message", ""), d.get("code", ""))

if code == 0:
    got = "valid"
elif code == 1:
    own = [d for d in errors if same_file(d.get("file")) and isinstance(d.get("line"), int)]
    if own:
        got = "invalid@%d" % own[0]["line"]
    elif errors:
        d = errors[0]
        got = "invalid@%s:%s" % (os.path.basename(d.get("file") or "?"), d.get("line") or "?")
    else:
        got = "invalid@?" + (" (%s)" % parse_problem if parse_problem else "")
elif code in (124, 137):
    got = "timeout"
else:
    got = "exit %d" % code

if expected_line == "":
    ok = code == 0
else:
    want = int(expected_line)
    ok = code == 1 and any(d.get("line") == want and same_file(d.get("file")) for d in errors)

print("%s\t%s" % (got, "OK" if ok else "MISMATCH"))
if not ok:
    for d in errors[:3]:
        print("      " + describe(d))
    if parse_problem and code == 1:
        print("      (" + parse_problem + ")")
'

passed=0
failed=0
row() { printf '%-48s %-24s %-18s %-26s %s\n' "$@"; }
row FILE VERSION EXPECTED GOT VERDICT
row "----" "-------" "--------" "---" "-------"

shopt -s nullglob
templates=("$dir"/valid/*.yaml "$dir"/valid/*.yml "$dir"/invalid/*.yaml "$dir"/invalid/*.yml)
if [[ ${#templates[@]} -eq 0 ]]; then
    echo "corpus-check: no templates under '$dir/valid' or '$dir/invalid'" >&2
    exit 2
fi

for file in "${templates[@]}"; do
    name=${file#"$dir"/}
    version=$(sed -n 's/^tosca_definitions_version:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$file" | head -n 1)
    version=${version:-?}
    header=$(head -n 1 "$file")
    expected_line=""
    if [[ $header =~ ^#[[:space:]]*expect:[[:space:]]*valid[[:space:]]*$ ]]; then
        expected="valid"
    elif [[ $header =~ ^#[[:space:]]*expect:[[:space:]]*invalid[[:space:]]+line[[:space:]]+([0-9]+)[[:space:]]*$ ]]; then
        expected_line=${BASH_REMATCH[1]}
        expected="invalid@$expected_line"
    else
        row "$name" "$version" "(no # expect line)" "-" "MISMATCH"
        failed=$((failed + 1))
        continue
    fi

    code=0
    "${run_with_timeout[@]}" "$deployctl" validate --format json "$file" >"$tmp/out.json" 2>"$tmp/err.txt" || code=$?
    verdict=$(python3 -c "$judge" "$file" "$code" "$expected_line" <"$tmp/out.json")
    IFS=$'\t' read -r got status <<<"$(head -n 1 <<<"$verdict")"
    row "$name" "$version" "$expected" "$got" "$status"
    if [[ $status == OK ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        tail -n +2 <<<"$verdict"
        if [[ $code -ne 0 && $code -ne 1 && -s $tmp/err.txt ]]; then
            head -n 3 "$tmp/err.txt" | sed 's/^/      stderr: /'
        fi
    fi
done

echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
