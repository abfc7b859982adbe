#!/usr/bin/env bash
# The gateway's performance targets (issues 6 and 21), in one run on one machine:
#  1. wrk through `casguard gateway` against wrk through nginx `proxy_pass`,
#     same upstream (nginx serving a static 200). Prints the requests/s ratio
#     and the p99 latency each proxy adds over going direct.
#     Target (issue 21): >= 90% of nginx's requests/s at 100 and at 1,000
#     keep-alive connections (CONNS lists both).
#  2. LATENCY: a fixed request rate below saturation (RATE req/s in total
#     over LAT_CONNS keep-alive connections, open loop, from
#     crates/gateway/examples/latency.rs), direct, through nginx and through
#     the gateway. Prints the p99 each proxy adds. Flat-out wrk on a small
#     machine mostly measures queueing; this measures the proxy. RATE=auto
#     (the default after part 1): half of nginx's flat-out median at the
#     last CONNS. Target: the gateway adds no more than nginx's added p99
#     + 0.3 ms.
#  3. IDLE_CONNS ActiveSync Ping long-polls held open through the gateway
#     (bench/idle-connections.py: a mock Exchange that never answers, and the
#     clients). Prints the gateway's RSS and the cost per connection, both
#     sockets of each long-poll counted. Target: <= 20 KB per connection.
#  4. INSTR: user-space instructions per proxied request, gateway (one
#     thread) against one nginx worker, counted by valgrind's callgrind at a
#     fixed rate. Unlike wall time, the count does not depend on what else the
#     machine is doing; kernel time (about the same for both: four socket
#     calls a request) is not in it.
#
# Usage: bench/gateway.sh
#   CONNS="100 1000" DURATION=5 THREADS=1   wrk connections (a list), seconds, threads
#   ROUNDS=3                          interleaved wrk rounds; medians are printed
#   WORKERS=1                         nginx proxy workers = gateway --threads
#   IDLE_CONNS=10000                  0 skips part 3; THROUGHPUT=0 skips part 1
#   LATENCY=1 RATE=auto LAT_CONNS=1000 LAT_SECONDS=10   0 skips part 2
#   INSTR=1                           0 skips part 4
#   CASGUARD=path/to/casguard         default: cargo build --release
#   BASELINE=path/to/other/casguard   also run this build's gateway in parts 1 and 4,
#                                     interleaved (order alternating by round), and
#                                     print CASGUARD's requests/s and instructions
#                                     against it: what a change costs
# Needs 2 x IDLE_CONNS descriptors in the gateway: the script raises
# `ulimit -n`, and measures fewer connections if the hard limit is lower.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS_LIST=${CONNS:-100 1000}
DURATION=${DURATION:-5}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
THROUGHPUT=${THROUGHPUT:-1}
ROUNDS=${ROUNDS:-3}
LATENCY=${LATENCY:-1}
RATE=${RATE:-auto}
LAT_CONNS=${LAT_CONNS:-1000}
LAT_SECONDS=${LAT_SECONDS:-10}
INSTR=${INSTR:-1}
BASELINE=${BASELINE:-}
UP=18180 NGX=18181 GW=18182 IDLE_UP=18183 IDLE_GW=18184 GWB=18185

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
[ "${INSTR:-1}" = 0 ] || command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} from Debian" >&2
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq && $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${CASGUARD:-}" ]; then
    cargo build --release -q -p casguard
    CASGUARD=target/release/casguard
fi
if [ "$LATENCY" != 0 ] || [ "$INSTR" != 0 ]; then
    cargo build --release -q -p gateway --example latency
fi

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo 'default = "allow"' > "$work/policy.toml"

wait_port() {
    for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done
    echo "nothing listens on port $1" >&2; exit 1
}

    # Upstream and proxy are separate nginx instances, so the proxy's worker
    # count is the same as the gateway's threads and the upstream is shared.
    nginx_conf() { # NAME WORKERS SERVER-BLOCK
        cat > "$work/$1.conf" <<NGX
worker_processes $2;
pid $work/$1.pid;
error_log $work/$1.error.log;
daemon off;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
    uwsgi_temp_path $work; scgi_temp_path $work;
    $3
}
NGX
    }
    nginx_conf upstream 1 "server { listen 127.0.0.1:$UP; keepalive_requests 1000000; location / { return 200 \"ok\n\"; } }"
    nginx_conf proxy "$WORKERS" "upstream cas { server 127.0.0.1:$UP; keepalive 1024; }
    server {
        listen 127.0.0.1:$NGX; keepalive_requests 1000000;
        location / { proxy_pass http://cas; proxy_http_version 1.1; proxy_set_header Connection \"\";
                     proxy_buffering off; proxy_request_buffering off; }
    }"

# --- 1. throughput and latency under wrk; 2. latency at a fixed rate ----------
if [ "$THROUGHPUT" != 0 ] || [ "$LATENCY" != 0 ]; then
    "$NGINX" -c "$work/upstream.conf" -p "$work" & pids+=($!)
    "$NGINX" -c "$work/proxy.conf" -p "$work" & pids+=($!)
    "$CASGUARD" gateway --policy "$work/policy.toml" --listen-plain 127.0.0.1:$GW --threads "$WORKERS" \
        --upstream http://127.0.0.1:$UP --max-connections 20000 --log-level warn & pids+=($!)
    ports="$UP $NGX $GW"
    if [ -n "$BASELINE" ]; then
        "$BASELINE" gateway --policy "$work/policy.toml" --listen-plain 127.0.0.1:$GWB --threads "$WORKERS" \
            --upstream http://127.0.0.1:$UP --max-connections 20000 --log-level warn & pids+=($!)
        ports="$ports $GWB"
    fi
    for port in $ports; do wait_port $port; done

    run() { # URL -> "rps p99_ms"
        local out; out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
            -H 'User-Agent: Microsoft Office/16.0 (Microsoft Outlook 16.0)' "$1/owa/")
        local rps p99
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
        if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then grep 'Non-2xx\|Socket errors' <<<"$out" | sed "s|^|$1: |" >&2; fi
        echo "$rps $p99"
    }

  if [ "$THROUGHPUT" != 0 ]; then
   for CONNS in $CONNS_LIST; do
    echo
    echo "wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive, $ROUNDS interleaved rounds (medians);" \
        "upstream: nginx static 200; nginx proxy workers = gateway threads = $WORKERS; $(nproc) cores"
    # A first run faults in each server's buffers for CONNS connections;
    # warm every row once, uncounted, as a server that has been up a while is.
    for port in $ports; do run http://127.0.0.1:$port > /dev/null; done
    : > "$work/rounds"
    for round in $(seq "$ROUNDS"); do
        # Interleaved, so a busy moment on the machine hits every row alike.
        read -r d_rps d_p99 < <(run http://127.0.0.1:$UP)
        read -r n_rps n_p99 < <(run http://127.0.0.1:$NGX)
        b_rps=0 b_p99=0
        if [ -n "$BASELINE" ] && [ $((round % 2)) = 0 ]; then
            read -r b_rps b_p99 < <(run http://127.0.0.1:$GWB)
        fi
        read -r g_rps g_p99 < <(run http://127.0.0.1:$GW)
        if [ -n "$BASELINE" ] && [ $((round % 2)) = 1 ]; then
            read -r b_rps b_p99 < <(run http://127.0.0.1:$GWB)
        fi
        echo "$round $d_rps $d_p99 $n_rps $n_p99 $g_rps $g_p99 $b_rps $b_p99" >> "$work/rounds"
        awk -v g="$g_rps" -v n="$n_rps" -v b="$b_rps" -v r="$round" 'BEGIN {
            printf "round %d: gateway/nginx %.0f%%", r, 100 * g / n;
            if (b > 0) printf ", gateway/baseline %.1f%%", 100 * g / b;
            printf "\n" }' >&2
    done
    awk 'function median(col,   i, n, v, t, j) {
            n = 0; for (i = 1; i <= NR; i++) v[++n] = row[i, col];
            for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
            return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }
        { for (c = 2; c <= 9; c++) row[NR, c] = $c; ratio[NR] = $6 / $4; if ($8 > 0) base[NR] = $6 / $8 }
        END {
        d = median(2); dp = median(3); n = median(4); np = median(5); g = median(6); gp = median(7);
        b = median(8); bp = median(9);
        lo = 1e9; hi = 0; for (i = 1; i <= NR; i++) { if (ratio[i] < lo) lo = ratio[i]; if (ratio[i] > hi) hi = ratio[i] }
        # Little: with C requests always in flight, mean latency = C / requests/s.
        printf "%-18s %12s %10s %14s %16s\n", "", "requests/s", "p99 ms", "added p99 ms", "C/(req/s) ms";
        printf "%-18s %12.0f %10.2f %14s %16.2f\n", "direct", d, dp, "-", 1000 * conns / d;
        printf "%-18s %12.0f %10.2f %14.2f %16.2f\n", "nginx proxy_pass", n, np, np - dp, 1000 * conns / n;
        printf "%-18s %12.0f %10.2f %14.2f %16.2f\n", "casguard gateway", g, gp, gp - dp, 1000 * conns / g;
        if (b > 0) printf "%-18s %12.0f %10.2f %14.2f %16.2f\n", "baseline gateway", b, bp, bp - dp, 1000 * conns / b;
        printf "gateway/nginx requests/s: %.0f%% of medians, %.0f%%..%.0f%% by round (target >= 90%%);" \
            " added p99: gateway %.2f ms, nginx %.2f ms\n", 100 * g / n, 100 * lo, 100 * hi, gp - dp, np - dp;
        printf "flat out, latency is queueing (mean = C / (req/s), Little): a proxy at X req/s adds C/X - C/direct to the mean" \
            " (nginx %.1f ms, gateway %.1f ms)\n", 1000 * conns / n - 1000 * conns / d, 1000 * conns / g - 1000 * conns / d;
        if (b > 0) {
            n = 0; for (i = 1; i <= NR; i++) v[++n] = base[i];
            for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
            printf "gateway/baseline requests/s: %.1f%% of medians; by round: median %.1f%%, %.1f%%..%.1f%%\n",
                100 * g / b, 100 * (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), 100 * v[1], 100 * v[n];
        }
    }' conns="$CONNS" "$work/rounds"
    # Half of nginx's flat-out median at this CONNS: the fixed rate of part 2.
    nginx_half=$(cut -d' ' -f4 "$work/rounds" | sort -g | awk '{v[NR] = $1} END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%d", m / 2 }')
   done
  fi
  if [ "$LATENCY" != 0 ]; then
    if [ "$RATE" = auto ]; then RATE=${nginx_half:-2000}; fi
    lat() { # URL -> "p50 p99 p999"; warns about errors and late sends
        local out; out=$(target/release/examples/latency "$1/owa/" "$RATE" "$LAT_CONNS" "$LAT_SECONDS")
        read -r _ n _ err _ late _ p50 _ p99 _ p999 _ max <<<"$out"
        if [ "$err" != 0 ] || [ $((late * 100)) -gt "$n" ]; then
            echo "$1: $n requests, $err errors, $late sent > 2 ms late (generator or connection stalled)" >&2
        fi
        echo "$p50 $p99 $p999 $max"
    }
    if [ "$THROUGHPUT" != 0 ]; then echo; fi
    echo "fixed rate: $RATE req/s over $LAT_CONNS keep-alive connections for ${LAT_SECONDS}s" \
        "(open loop, one generator thread); $(nproc) cores"
    read -r d50 d99 d999 dmax < <(lat http://127.0.0.1:$UP)
    read -r n50 n99 n999 nmax < <(lat http://127.0.0.1:$NGX)
    read -r g50 g99 g999 gmax < <(lat http://127.0.0.1:$GW)
    awk -v d50="$d50" -v d99="$d99" -v d999="$d999" -v dm="$dmax" -v n50="$n50" -v n99="$n99" -v n999="$n999" -v nm="$nmax" \
        -v g50="$g50" -v g99="$g99" -v g999="$g999" -v gm="$gmax" -v r="$RATE" -v c="$LAT_CONNS" 'BEGIN {
        printf "%-18s %9s %9s %9s %9s\n", "ms", "p50", "p99", "p99.9", "max";
        printf "%-18s %9.3f %9.3f %9.3f %9.3f\n", "direct", d50, d99, d999, dm;
        printf "%-18s %9.3f %9.3f %9.3f %9.3f\n", "nginx proxy_pass", n50, n99, n999, nm;
        printf "%-18s %9.3f %9.3f %9.3f %9.3f\n", "casguard gateway", g50, g99, g999, gm;
        printf "added p99 at %d req/s over %d connections: gateway %.3f ms, nginx %.3f ms" \
            " (target: gateway <= nginx + 0.3 ms: %s)\n", r, c, g99 - d99, n99 - d99, (g99 - d99 <= n99 - d99 + 0.3) ? "met" : "not met";
    }'
  fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
fi

# --- 3. idle long-polls -------------------------------------------------------
if [ "$IDLE_CONNS" != 0 ]; then
    kb() { awk -v k="$1:" '$1==k {print $2}' "/proc/$2/status"; }
    want=$IDLE_CONNS
    python3 bench/idle-connections.py upstream $IDLE_UP "$work/up.status" & pids+=($!)
    "$CASGUARD" gateway --policy "$work/policy.toml" --listen-plain 127.0.0.1:$IDLE_GW \
        --upstream http://127.0.0.1:$IDLE_UP --max-connections $((want + 100)) --log-level warn \
        2> "$work/gateway.err" & gw=$!; pids+=($gw)
    wait_port $IDLE_UP; wait_port $IDLE_GW
    sleep 0.5
    base_fds=$(ls "/proc/$gw/fd" | wc -l)
    limit=$(awk '/^Max open files/ {print $4}' "/proc/$gw/limits")
    # A client connection and its upstream connection, plus room for the health check.
    fit=$(( (limit - base_fds - 8) / 2 ))
    n=$want
    if [ "$fit" -lt "$n" ]; then
        n=$fit
        echo "open files limit $limit (hard limit $(ulimit -Hn)) fits $n, not $want, idle connections in the gateway;" \
            "measuring $n" >&2
    fi
    base_rss=$(kb VmRSS $gw)
    python3 bench/idle-connections.py clients 127.0.0.1:$IDLE_GW "$n" "$work/clients.status" & pids+=($!)
    held=0
    for _ in $(seq 600); do  # up to 60 s for all to be sent and held upstream
        sleep 0.1
        [ -f "$work/clients.status" ] || continue
        read -r _ sent _ answered _ failed < "$work/clients.status"
        read -r _ held _ < "$work/up.status"
        [ $((sent + failed)) -ge "$n" ] && [ "$held" -ge $((sent - answered)) ] && break
    done
    sleep 1 # let the last connections settle
    read -r _ sent _ answered _ failed < "$work/clients.status"
    read -r _ held _ < "$work/up.status"
    rss=$(kb VmRSS $gw); hwm=$(kb VmHWM $gw); fds=$(ls "/proc/$gw/fd" | wc -l)
    echo
    echo "idle ActiveSync Ping long-polls through the gateway: $sent sent, $held held by the upstream," \
        "$answered answered early, $failed failed; gateway fds $fds"
    awk -v n="$n" -v b="$base_rss" -v r="$rss" -v h="$hwm" 'BEGIN {
        per = (r - b) / n;
        printf "gateway RSS %.0f MB (VmHWM %.0f MB, %.0f MB before), %.1f KB per connection", r / 1024, h / 1024, b / 1024, per;
        printf "; 10,000 connections: %.0f MB (target <= 20 KB per connection)\n", (b + per * 10000) / 1024;
    }'
    if [ -s "$work/gateway.err" ]; then sort "$work/gateway.err" | cut -c22- | uniq -c | head -5 >&2; fi
fi

# --- 4. user-space instructions per request -------------------------------------
if [ "$INSTR" != 0 ]; then
    "$NGINX" -c "$work/upstream.conf" -p "$work" & pids+=($!)
    wait_port $UP
    # SERVER-PID PORT -> instructions per request, counted from after a warm-up.
    count() {
        local pid=$1 port=$2 out n ir
        wait_port "$port"
        target/release/examples/latency "http://127.0.0.1:$port/owa/" 50 100 2 >/dev/null
        callgrind_control -z "$pid" >/dev/null 2>&1
        out=$(target/release/examples/latency "http://127.0.0.1:$port/owa/" 1000 100 10)
        callgrind_control -d "$pid" >/dev/null 2>&1
        n=$(awk '{print $2 + 100}' <<<"$out") # and one warm-up request per connection
        sleep 0.5
        ir=$(callgrind_annotate "$work/cg.$pid.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
        echo $((ir / n))
    }
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$CASGUARD" --threads 1 gateway \
        --policy "$work/policy.toml" --listen-plain 127.0.0.1:$GW --upstream http://127.0.0.1:$UP \
        --max-connections 1000 --log-level error 2>/dev/null & vg=$!
    g_ir=$(count $vg $GW); kill -INT $vg; wait $vg 2>/dev/null || true
    b_ir=0
    if [ -n "$BASELINE" ]; then
        valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$BASELINE" --threads 1 gateway \
            --policy "$work/policy.toml" --listen-plain 127.0.0.1:$GWB --upstream http://127.0.0.1:$UP \
            --max-connections 1000 --log-level error 2>/dev/null & vb=$!
        b_ir=$(count $vb $GWB); kill -INT $vb; wait $vb 2>/dev/null || true
    fi
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" "$NGINX" -c "$work/proxy.conf" -p "$work" \
        -g 'master_process off;' 2>/dev/null & vn=$!
    n_ir=$(count $vn $NGX); kill -QUIT $vn; wait $vn 2>/dev/null || true
    echo
    echo "user-space instructions per request (callgrind; 1,000 req/s over 100 keep-alive connections for 10 s):"
    awk -v g="$g_ir" -v n="$n_ir" -v b="$b_ir" 'BEGIN {
        printf "nginx proxy_pass %d, casguard gateway %d: gateway/nginx %.2f\n", n, g, g / n;
        if (b > 0) printf "baseline gateway %d: gateway/baseline %.3f\n", b, g / b }'
fi
