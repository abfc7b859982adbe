#!/usr/bin/env bash
# Check that two casguard binaries write the same output on one corpus:
# audit (json and csv), simulate with every policy in examples/policies
# (json; devices seen before truth.json's cutover are known) and export
# (jsonl and parquet). For refactorings that must not
# change what the reports say (issue 17).
#
# MORE=1 also compares every other renderer: audit as a table, simulate as a
# table and csv, simulate --baseline (json, csv, table) and posture with each
# policy as the one in force (json, csv, table). Six times the runs: meant
# for small corpora. REUSE_BASE=1 keeps OUT/base from an earlier run of the
# same BASE_BIN on the same corpus (with the same MORE).
#
#   bench/identical.sh BASE_BIN NEW_BIN CORPUS [OUT]
#
# OUT (default target/identical/<corpus name>) gets base/ and new/ with every
# output. Text outputs are compared byte for byte; Parquet files too, and
# when they differ their rows are compared through DuckDB if target/pyenv
# has it (files written by one writer version with the same rows should not
# differ at all). Exit 0 when every output is identical, 1 otherwise.
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
BASE=$(realpath "$1")
NEW=$(realpath "$2")
CORPUS=$(realpath "$3")
OUT=${4:-target/identical/$(basename "$CORPUS")}
# Policies about new devices need to know which are known: those seen before
# the cutover loggen wrote in truth.json, else before the year 2000 (none).
KNOWN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("cutover") or "")' \
    "$CORPUS/truth.json" 2>/dev/null || true)
KNOWN=${KNOWN:-2000-01-01}

run() {
    local bin=$1 dir=$2
    rm -rf "$dir"
    mkdir -p "$dir/audit-csv"
    "$bin" audit -q --format json --out "$dir/audit.json" "$CORPUS"
    "$bin" audit -q --format csv --out "$dir/audit-csv" "$CORPUS" 2>/dev/null
    for policy in examples/policies/*.toml; do
        local name
        name=$(basename "$policy" .toml)
        "$bin" simulate -q --known-before "$KNOWN" --policy "$policy" --format json --out "$dir/simulate-$name.json" "$CORPUS"
    done
    "$bin" export -q --format jsonl --out "$dir/export.jsonl" "$CORPUS"
    "$bin" export -q --format parquet --out "$dir/parquet" "$CORPUS"
    [ "${MORE:-0}" = 1 ] || return 0
    "$bin" audit -q --format table --out "$dir/audit.txt" "$CORPUS"
    local baseline=examples/policies/mailbox-and-iis-settings.toml
    for policy in examples/policies/*.toml; do
        local name
        name=$(basename "$policy" .toml)
        local sim=("$bin" simulate -q --known-before "$KNOWN" --policy "$policy")
        "${sim[@]}" --format table --out "$dir/simulate-$name.txt" "$CORPUS"
        mkdir -p "$dir/simulate-csv-$name" "$dir/change-csv-$name" "$dir/posture-csv-$name"
        "${sim[@]}" --format csv --out "$dir/simulate-csv-$name" "$CORPUS" 2>/dev/null
        for format in json table; do
            "${sim[@]}" --baseline "$baseline" --format $format --out "$dir/change-$name.$format" "$CORPUS"
        done
        "${sim[@]}" --baseline "$baseline" --format csv --out "$dir/change-csv-$name" "$CORPUS" 2>/dev/null
        # Posture takes no inventory: a policy about new devices is refused,
        # and the refusal (exit status and message) is compared instead.
        for format in json table csv; do
            local out="$dir/posture-$name.$format"
            [ $format = csv ] && out="$dir/posture-csv-$name"
            "$bin" posture -q --policy "$policy" --format $format --out "$out" "$CORPUS" \
                >"$dir/posture-$name.$format.status" 2>&1 || echo "exit $?" >>"$dir/posture-$name.$format.status"
        done
    done
}

if [ "${REUSE_BASE:-0}" = 1 ] && [ -d "$OUT/base" ]; then
    echo "base: $OUT/base (kept)" >&2
else
    echo "base: $BASE" >&2
    run "$BASE" "$OUT/base"
fi
echo "new:  $NEW" >&2
run "$NEW" "$OUT/new"

status=0
while IFS= read -r -d '' file; do
    rel=${file#"$OUT/base/"}
    other="$OUT/new/$rel"
    if [ ! -f "$other" ]; then
        echo "MISSING in new: $rel"
        status=1
    elif cmp -s "$file" "$other"; then
        echo "same: $rel ($(wc -c <"$file") bytes)"
    elif [[ $rel == *.parquet ]] && [ -x target/pyenv/bin/python ]; then
        if target/pyenv/bin/python - "$file" "$other" <<'EOF'; then
import sys, duckdb
q = "select * from read_parquet('{}') except all select * from read_parquet('{}')"
a, b = sys.argv[1], sys.argv[2]
n = duckdb.sql(q.format(a, b)).fetchall() + duckdb.sql(q.format(b, a)).fetchall()
sys.exit(1 if n else 0)
EOF
            echo "same rows: $rel (bytes differ)"
        else
            echo "DIFFERENT rows: $rel"
            status=1
        fi
    else
        echo "DIFFERENT: $rel"
        status=1
    fi
done < <(find "$OUT/base" -type f -print0 | sort -z)
while IFS= read -r -d '' file; do
    rel=${file#"$OUT/new/"}
    [ -f "$OUT/base/$rel" ] || { echo "EXTRA in new: $rel"; status=1; }
done < <(find "$OUT/new" -type f -print0 | sort -z)
[ $status = 0 ] && echo "identical: every output of $(basename "$CORPUS")" || echo "outputs differ"
exit $status
