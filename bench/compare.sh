#!/usr/bin/env bash
# Compare casguard audit with rg -c, gzip -dc and GoAccess over one generated
# corpus, in one run, on this machine. Prints one table plus the ratios.
# The row `reader-alone` is casguard's own parallel scan with a visitor that
# only counts records (crates/audit/examples/read_floor.rs): the floor under
# audit, before any classification or aggregation.
#
#   bench/compare.sh [SIZE_BYTES]     (default 1000000000, about 3M lines)
#
# Timed with a warm page cache, then (COLD=1, as root) once each from a cold
# one, against `cat` as the speed of the disk.
#
# The rows iis-front-end, httpproxy and iis+httpproxy read a second corpus,
# bench/corpus/SIZE/mixed: one traffic written both as IIS logs and as
# Exchange HttpProxy logs (loggen --httpproxy also), over 2 servers and 2
# days so that HttpProxy files have the size a busy front end writes (one
# per hour and protocol, about a megabyte). httpproxy / iis-front-end is
# the HttpProxy reader against the W3C reader on the same requests.
#
# The rows ending in -heavy read a second corpus, bench/corpus/SIZE/backend-heavy
# (loggen --profile backend-heavy: half the lines back-end hops to
# /Microsoft-Server-ActiveSync/Proxy/ on port 444, long ActiveSync `Log=`
# tokens, base64 queries, 400 users and about 1,400 devices), the same size.
#
# The row duckdb is DuckDB's read_csv(delim=' ', comment='#', all_varchar=true)
# and GROUP BY (cs-username, cs(User-Agent)) over the same plain files,
# threads = cores (bench/duckdb-groupby.py), DuckDB from tests/requirements.txt
# in target/pyenv (scripts/test builds it; this script adds DuckDB alone if
# it is missing). Issue 22's targets: audit <= 0.5x DuckDB and <= 3x its own
# reader alone on both corpora, gzip <= 0.6x `gzip -dc`, HttpProxy within
# 1.25x of IIS per line.
#
# The corpus is generated into bench/corpus/ if missing (same seed, same users).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1000000000}
CORPUS=bench/corpus/$SIZE
PLAIN=$CORPUS/plain
GZ=$CORPUS/gz
RUNS=${RUNS:-3}
# GoAccess is slow; fewer runs keep the script short.
GA_RUNS=${GA_RUNS:-1}
# COLD=1: also time one run each from a cold page cache (needs root to drop it).
COLD=${COLD:-1}

need() { command -v "$1" >/dev/null 2>&1 || MISSING="$MISSING $2"; }
MISSING=""
need rg ripgrep; need goaccess goaccess; need hyperfine hyperfine; need /usr/bin/time time
if [ -n "$MISSING" ]; then
  echo "installing:$MISSING" >&2
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $MISSING >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq $MISSING >/dev/null; fi
fi

cargo build --release -q -p casguard -p casguard-loggen
cargo build --release -q -p audit --example read_floor
BIN=target/release/casguard
GEN=target/release/casguard-loggen

if [ ! -f "$PLAIN/truth.json" ]; then
  echo "generating $SIZE bytes of logs into $PLAIN" >&2
  rm -rf "$PLAIN"
  "$GEN" --out "$PLAIN" --seed 42 --users 2000 --servers 4 --days 7 --target-bytes "$SIZE" --gzip none --malformed 3
fi
if [ ! -d "$GZ" ]; then
  echo "compressing a copy into $GZ" >&2
  mkdir -p "$GZ"
  (cd "$PLAIN" && find . -name '*.log' -print0 | xargs -0 -n1 -P2 sh -c 'mkdir -p "../gz/$(dirname "$1")" && gzip -c "$1" > "../gz/$1.gz"' _)
fi

HEAVY=$CORPUS/backend-heavy
if [ ! -f "$HEAVY/truth.json" ]; then
  echo "generating $SIZE bytes of back-end-heavy logs into $HEAVY" >&2
  rm -rf "$HEAVY"
  "$GEN" --out "$HEAVY" --seed 42 --users 400 --servers 4 --days 7 --target-bytes "$SIZE" --gzip none --malformed 3 \
    --profile backend-heavy
fi

PY=target/pyenv/bin/python
if ! "$PY" -c 'import duckdb' 2>/dev/null; then
  echo "installing DuckDB into target/pyenv" >&2
  [ -x "$PY" ] || python3 -m venv target/pyenv
  "$PY" -m pip install -q "$(grep -m1 '^duckdb' tests/requirements.txt)"
fi

MIXED=$CORPUS/mixed
if [ ! -f "$MIXED/truth.json" ]; then
  echo "generating $SIZE bytes of IIS and HttpProxy logs of one traffic into $MIXED" >&2
  rm -rf "$MIXED"
  "$GEN" --out "$MIXED" --seed 42 --users 2000 --servers 2 --days 2 --target-bytes "$SIZE" --gzip none --malformed 3 --httpproxy also
fi
mapfile -t MIXED_FE_DIRS < <(find "$MIXED" -type d -name W3SVC1 | sort)
mapfile -t MIXED_HP_DIRS < <(find "$MIXED" -type d -path '*/Logging/HttpProxy' | sort)
count_lines() { find "$@" -type f \( -name '*.log' -o -name '*.LOG' \) -print0 | xargs -0 cat | grep -vc '^#' || true; }
MIXED_FE_LINES=$(count_lines "${MIXED_FE_DIRS[@]}")
MIXED_HP_LINES=$(count_lines "${MIXED_HP_DIRS[@]}")
MIXED_LINES=$(count_lines "$MIXED")

mapfile -t PLAIN_FILES < <(find "$PLAIN" -name '*.log' | sort)
mapfile -t GZ_FILES < <(find "$GZ" -name '*.log.gz' | sort)
mapfile -t HEAVY_FILES < <(find "$HEAVY" -name '*.log' | sort)
HEAVY_LINES=$(cat "${HEAVY_FILES[@]}" | grep -vc '^#' || true)
mapfile -t FRONT_FILES < <(find "$PLAIN" -path '*W3SVC1*' -name '*.log' | sort)
LINES=$(cat "${PLAIN_FILES[@]}" | grep -vc '^#' || true)
FRONT_LINES=$(cat "${FRONT_FILES[@]}" | grep -vc '^#' || true)
BYTES=$(cat "${PLAIN_FILES[@]}" | wc -c)
echo "corpus: $((BYTES / 1000000)) MB, $LINES lines, ${#PLAIN_FILES[@]} files; $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2

# Warm the page cache.
cat "${PLAIN_FILES[@]}" "${GZ_FILES[@]}" "${HEAVY_FILES[@]}" > /dev/null
find "$MIXED" -type f -print0 | xargs -0 cat > /dev/null

GOACCESS_FORMAT='%d %t %^ %m %U %q %^ %^ %h %u %R %s %^ %^ %L'
declare -A CMD=(
  [casguard]="$BIN audit --quiet --format json $PLAIN > /dev/null"
  [casguard-1thread]="$BIN audit --quiet --threads 1 --format json $PLAIN > /dev/null"
  [reader-alone]="target/release/examples/read_floor $PLAIN > /dev/null"
  [rg-c]="rg -c Outlook-iOS-Android ${PLAIN_FILES[*]} > /dev/null || true"
  [duckdb]="$PY bench/duckdb-groupby.py $(nproc) ${PLAIN_FILES[*]} > /dev/null"
  [casguard-heavy]="$BIN audit --quiet --format json $HEAVY > /dev/null"
  [reader-alone-heavy]="target/release/examples/read_floor $HEAVY > /dev/null"
  [duckdb-heavy]="$PY bench/duckdb-groupby.py $(nproc) ${HEAVY_FILES[*]} > /dev/null"
  [casguard-gz]="$BIN audit --quiet --format json $GZ > /dev/null"
  [gzip-dc]="gzip -dc ${GZ_FILES[*]} > /dev/null"
  [goaccess]="goaccess ${FRONT_FILES[*]} --log-format='$GOACCESS_FORMAT' --date-format='%Y-%m-%d' --time-format='%H:%M:%S' --no-progress --num-tests=0 -o /tmp/casguard-goaccess.json > /dev/null 2>&1 || true"
  [iis-front-end]="$BIN audit --quiet --format json ${MIXED_FE_DIRS[*]} > /dev/null 2>&1"
  [httpproxy]="$BIN audit --quiet --format json ${MIXED_HP_DIRS[*]} > /dev/null 2>&1"
  [iis+httpproxy]="$BIN audit --quiet --format json $MIXED > /dev/null 2>&1"
)
ORDER=(casguard casguard-1thread reader-alone duckdb casguard-heavy reader-alone-heavy duckdb-heavy rg-c casguard-gz gzip-dc goaccess iis-front-end httpproxy iis+httpproxy)

declare -A WALL RSS
for name in "${ORDER[@]}"; do
  json=$(mktemp)
  runs=$RUNS; [ "$name" = goaccess ] && runs=$GA_RUNS
  hyperfine --style none --warmup 1 --runs "$runs" --export-json "$json" --shell bash "${CMD[$name]}" >/dev/null
  WALL[$name]=$(python3 -c "import json,sys; print(json.load(open('$json'))['results'][0]['median'])")
  rm -f "$json"
  RSS[$name]=$( { /usr/bin/time -f '%M' bash -c "${CMD[$name]}" >/dev/null; } 2>&1 | tail -1 )
done

printf '\n%-18s %10s %14s %12s\n' tool "wall (s)" "lines/s" "peak RSS MB"
for name in "${ORDER[@]}"; do
  case $name in
    goaccess) lines=$FRONT_LINES ;;
    iis-front-end) lines=$MIXED_FE_LINES ;;
    httpproxy) lines=$MIXED_HP_LINES ;;
    iis+httpproxy) lines=$MIXED_LINES ;;
    *-heavy) lines=$HEAVY_LINES ;;
    *) lines=$LINES ;;
  esac
  python3 - "$name" "${WALL[$name]}" "$lines" "${RSS[$name]}" <<'PY'
import sys
name, wall, lines, rss = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print(f"{name:<18} {wall:>10.3f} {lines / wall:>14,.0f} {rss / 1024:>12.1f}")
PY
done
python3 - "${WALL[casguard]}" "${WALL[rg-c]}" "${WALL[casguard-gz]}" "${WALL[gzip-dc]}" "${WALL[goaccess]}" "${WALL[casguard-1thread]}" "$LINES" "$FRONT_LINES" "${WALL[reader-alone]}" <<'PY'
import sys
cg, rg, cgz, gz, ga, one, lines, front, floor = map(float, sys.argv[1:])
print()
print(f"casguard / rg -c            {cg / rg:6.2f}x   (target <= 3)")
print(f"reader alone / rg -c        {floor / rg:6.2f}x   (the floor: no classification, no aggregation)")
print(f"casguard gz / gzip -dc      {cgz / gz:6.2f}x   (target <= 0.6)")
print(f"casguard vs GoAccess, lines/s  {(lines / cg) / (front / ga):6.1f}x")
print(f"speed-up 1 -> 2 threads     {one / cg:6.2f}x")
PY
python3 - "${WALL[casguard]}" "${WALL[duckdb]}" "${WALL[reader-alone]}" \
  "${WALL[casguard-heavy]}" "${WALL[duckdb-heavy]}" "${WALL[reader-alone-heavy]}" <<'PY'
import sys
cg, duck, floor, cgh, duckh, floorh = map(float, sys.argv[1:])
print(f"casguard / duckdb           {cg / duck:6.2f}x   (target <= 0.5)")
print(f"casguard / reader alone     {cg / floor:6.2f}x   (target <= 3)")
print(f"backend-heavy: casguard / duckdb        {cgh / duckh:6.2f}x   (target <= 0.5)")
print(f"backend-heavy: casguard / reader alone  {cgh / floorh:6.2f}x   (target <= 3)")
PY
python3 - "${WALL[iis-front-end]}" "${WALL[httpproxy]}" "$MIXED_FE_LINES" "$MIXED_HP_LINES" <<'PY'
import sys
fe, hp, fe_lines, hp_lines = map(float, sys.argv[1:])
print(f"httpproxy / iis-front-end, lines/s  {(hp_lines / hp) / (fe_lines / fe):6.2f}   (same requests; target >= 0.8, i.e. within 1.25x)")
PY

# Cold page cache: what an admin sees on logs nobody has read since they were written.
if [ "$COLD" != 0 ]; then
  if [ -w /proc/sys/vm/drop_caches ]; then
    declare -A COLD_WALL
    declare -A COLD_CMD=(
      [casguard]="${CMD[casguard]}"
      [casguard-1thread]="${CMD[casguard-1thread]}"
      [rg-c]="${CMD[rg-c]}"
      [cat]="cat ${PLAIN_FILES[*]} > /dev/null"
    )
    for name in casguard casguard-1thread rg-c cat; do
      sync; echo 3 > /proc/sys/vm/drop_caches
      COLD_WALL[$name]=$( { /usr/bin/time -f '%e' bash -c "${COLD_CMD[$name]}" >/dev/null; } 2>&1 | tail -1 )
    done
    printf '\ncold page cache, one run each:\n'
    for name in casguard casguard-1thread rg-c cat; do
      printf '%-18s %10.2f s\n' "$name" "${COLD_WALL[$name]}"
    done
    python3 -c "import sys; print(f'casguard / cat (the disk)   {float(sys.argv[1]) / float(sys.argv[2]):6.2f}x')" \
      "${COLD_WALL[casguard]}" "${COLD_WALL[cat]}"
  else
    echo "cold page cache: skipped (dropping the page cache needs root)" >&2
  fi
fi
