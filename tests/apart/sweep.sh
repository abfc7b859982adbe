#!/usr/bin/env bash
# casguard against the independent writer over more seeds than the CLI tests
# use (they run seeds 7 and 2026): audit (whole and back ends alone), simulate
# with every policy, posture doors, and, with --httpproxy none, every policy
# with the estate's device export and `simulate --baseline` for every ordered
# pair of policies. Prints one line per disagreement, then "sweep done".
#
#   tests/apart/sweep.sh [SEED...]        (default: 1 2 3)
#   CASGUARD=target/release/casguard OUT=/tmp/sweep tests/apart/sweep.sh 4 5
set -u
cd "$(dirname "$0")/../.."
BIN=${CASGUARD:-target/debug/casguard}
OUT=${OUT:-${TMPDIR:-/tmp}/casguard-apart-sweep}
CUT=2026-11-09T06:30:00Z   # the cut-over of apart.rs's `device = "new"` checks
P=tests/apart/policies
[ -x "$BIN" ] || { echo "no $BIN: cargo build first, or set CASGUARD" >&2; exit 2; }
check() { python3 tests/apart/check.py "$@" > "$d/check.out" 2>&1 || { echo "$label"; head -6 "$d/check.out"; }; }
cutover() { case $(basename "$1") in new-*) echo "--known-before $CUT";; esac; }
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
for seed in "${seeds[@]}"; do
  for hp in none also only; do
    d=$OUT/$seed-$hp; rm -rf "$d"; mkdir -p "$d"
    python3 tests/apart/write.py --seed "$seed" --httpproxy "$hp" --out "$d" > /dev/null 2> "$d/write.err" || { echo "write.py failed: $seed $hp"; continue; }
    "$BIN" audit --quiet --format json "$d/logs" > "$d/r.json" 2>> "$d/stderr"; label="audit $seed $hp"; check "$d/truth.json" "$d/r.json"
    if [ "$hp" != only ]; then
      "$BIN" audit --quiet --format json "$d"/logs/EX0*/W3SVC2 > "$d/r.json" 2>> "$d/stderr"
      label="back ends $seed $hp"; check "$d/truth.json" "$d/r.json" --backend-only
    fi
    for p in "$P"/*.toml; do
      # shellcheck disable=SC2046
      "$BIN" simulate --quiet --format json --policy "$p" $(cutover "$p") "$d/logs" > "$d/r.json" 2>> "$d/stderr"
      label="simulate $seed $hp $p"; check "$d/truth.json" "$d/r.json" --simulate "$p" $(cutover "$p")
      [ -n "$(cutover "$p")" ] && continue
      "$BIN" posture --quiet --format json --policy "$p" "$d/logs" > "$d/r.json" 2>> "$d/stderr"
      label="posture $seed $hp $p"; check "$d/truth.json" "$d/r.json" --posture-doors "$p"
      [ "$hp" = none ] || continue
      case $(basename "$p") in device-*)
        "$BIN" simulate --quiet --format json --devices "$d/devices.json" --policy "$p" "$d/logs" > "$d/r.json" 2>> "$d/stderr"
        label="simulate --devices $seed $p"; check "$d/truth.json" "$d/r.json" --simulate "$p" --devices;;
      esac
      for t in "$P"/*.toml; do
        [ "$t" = "$p" ] || [ -n "$(cutover "$t")" ] && continue
        "$BIN" simulate --quiet --format json --baseline "$p" --policy "$t" "$d/logs" > "$d/r.json" 2>> "$d/stderr"
        label="change $seed $p -> $t"; check "$d/truth.json" "$d/r.json" --simulate "$t" --baseline "$p"
      done
    done
  done
done
echo "sweep done"
