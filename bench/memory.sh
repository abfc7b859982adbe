#!/usr/bin/env bash
# Peak memory of casguard audit grows with users x devices, not with log size:
# a 1 GB and a 4 GB corpus with the same users, one run each, in one table.
#
#   bench/memory.sh            (corpora go to bench/corpus/, about 5 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
cargo build --release -q -p casguard -p casguard-loggen
BIN=target/release/casguard
GEN=target/release/casguard-loggen

printf '%-8s %10s %12s %10s %14s\n' corpus "size MB" lines "wall s" "peak RSS MB"
declare -A RSS
for size in 1000000000 4000000000; do
  dir=bench/corpus/mem-$size
  if [ ! -f "$dir/truth.json" ]; then
    "$GEN" --out "$dir" --seed 42 --users 2000 --servers 4 --days 7 --target-bytes "$size" --gzip none >/dev/null
  fi
  lines=$(python3 -c "import json; print(json.load(open('$dir/truth.json'))['summary']['lines'])")
  mb=$(du -sm "$dir" | cut -f1)
  cat $(find "$dir" -name '*.log') > /dev/null   # warm the page cache
  /usr/bin/time -o /tmp/casguard-memory.time -f '%e %M' "$BIN" audit --quiet --format json "$dir" >/dev/null 2>/dev/null
  read -r wall kb < /tmp/casguard-memory.time
  RSS[$size]=$kb
  printf '%-8s %10s %12s %10s %14s\n' "$((size / 1000000000)) GB" "$mb" "$lines" "$wall" "$((kb / 1024))"
done
python3 -c "print(f'RSS 4 GB / 1 GB: {${RSS[4000000000]} / ${RSS[1000000000]}:.2f} (target 0.8 to 1.2)')"
