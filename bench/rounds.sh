#!/usr/bin/env bash
# Issue 22's ratios in interleaved rounds: each round runs, on each corpus,
# `casguard audit --format json` of BASELINE (if given) and of CASGUARD, the
# reader floor (`read_floor`) and DuckDB's read_csv + GROUP BY
# (bench/duckdb-groupby.py), one after the other, so that a busy moment of a
# shared machine hits every row alike. Prints the median of each row and
# audit / DuckDB (target <= 0.5) and audit / floor (target <= 3).
#
# Usage: bench/rounds.sh
#   ROUNDS=7                          rounds
#   CORPORA="bench/corpus/300000000/plain bench/corpus/300000000/backend-heavy"
#                                     made by bench/compare.sh 300000000 when missing
#   CASGUARD=target/release/casguard  default: cargo build --release
#   BASELINE=path/to/other/casguard   also timed, interleaved: what a change gains
#   THREADS=2                         audit --threads and DuckDB threads
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-7}
THREADS=${THREADS:-2}
CORPORA=${CORPORA:-bench/corpus/300000000/plain bench/corpus/300000000/backend-heavy}
BASELINE=${BASELINE:-}
if [ -z "${CASGUARD:-}" ]; then
    cargo build --release -q -p casguard
    CASGUARD=target/release/casguard
fi
cargo build --release -q -p audit --example read_floor
FLOOR=target/release/examples/read_floor
PYTHON=target/pyenv/bin/python
[ -x "$PYTHON" ] || { echo "bench/rounds.sh: no $PYTHON: run scripts/test once (it makes the venv with DuckDB)" >&2; exit 2; }
for c in $CORPORA; do
    [ -d "$c" ] || { echo "bench/rounds.sh: no corpus $c: bench/compare.sh 300000000 makes it" >&2; exit 2; }
done

times=$(mktemp)
trap 'rm -f "$times"' EXIT
ms() { # ms NAME CORPUS COMMAND...: run, append "CORPUS NAME milliseconds"
    local name=$1 corpus=$2 start end
    shift 2
    start=$(date +%s%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s%N)
    echo "$corpus $name $(((end - start) / 1000000))" >>"$times"
}
for r in $(seq "$ROUNDS"); do
    for c in $CORPORA; do
        files=$(find "$c" -name '*.log' | sort)
        # Alternate the order of the two builds from round to round.
        if [ -n "$BASELINE" ] && [ $((r % 2)) = 0 ]; then
            ms baseline "$c" "$BASELINE" --threads "$THREADS" audit -q --format json --out /dev/null "$c"
        fi
        ms audit "$c" "$CASGUARD" --threads "$THREADS" audit -q --format json --out /dev/null "$c"
        if [ -n "$BASELINE" ] && [ $((r % 2)) = 1 ]; then
            ms baseline "$c" "$BASELINE" --threads "$THREADS" audit -q --format json --out /dev/null "$c"
        fi
        ms floor "$c" "$FLOOR" "$c"
        # shellcheck disable=SC2086 # one argument per file
        ms duckdb "$c" "$PYTHON" bench/duckdb-groupby.py "$THREADS" $files
    done
    echo "round $r of $ROUNDS done" >&2
done

python3 - "$times" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    corpus, name, ms = line.split()
    rows.setdefault(corpus, {}).setdefault(name, []).append(int(ms))
for corpus, r in rows.items():
    med = {name: statistics.median(v) for name, v in r.items()}
    print(f"{corpus} ({len(r['audit'])} rounds, medians)")
    for name, v in r.items():
        print(f"  {name:9} {med[name]:7.0f} ms  (min {min(v)}, max {max(v)})")
    print(f"  audit / duckdb {med['audit'] / med['duckdb']:.2f} (target <= 0.5)"
          f"   audit / floor {med['audit'] / med['floor']:.1f} (target <= 3)")
    if "baseline" in med:
        print(f"  audit / baseline {med['audit'] / med['baseline']:.3f}")
EOF
