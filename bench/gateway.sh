#!/usr/bin/env bash
# wrk through `casguard gateway` against wrk through nginx `proxy_pass`, same
# upstream (nginx serving a static 200), same machine, one run. Prints the
# requests/s ratio and the p99 latency each proxy adds over going direct.
#
# Usage: bench/gateway.sh            (CONNS=1000 DURATION=10s THREADS=2 to change)
#        CASGUARD=path/to/casguard bench/gateway.sh   (default: builds --release)
# Targets from issue 6: >= 80% of nginx's requests/s; <= 1 ms added p99 at
# 1,000 keep-alive connections.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=${CONNS:-1000}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
UP=18180 NGX=18181 GW=18182

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
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

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || true

cat > "$work/nginx.conf" <<NGX
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
daemon off;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $work; proxy_temp_path $work; fastcgi_temp_path $work;
    uwsgi_temp_path $work; scgi_temp_path $work;
    upstream cas { server 127.0.0.1:$UP; keepalive 1024; }
    server { listen 127.0.0.1:$UP; keepalive_requests 1000000; location / { return 200 "ok\n"; } }
    server {
        listen 127.0.0.1:$NGX; keepalive_requests 1000000;
        location / { proxy_pass http://cas; proxy_http_version 1.1; proxy_set_header Connection "";
                     proxy_buffering off; proxy_request_buffering off; }
    }
}
NGX
"$NGINX" -c "$work/nginx.conf" -p "$work" & pids+=($!)

echo 'default = "allow"' > "$work/policy.toml"
"$CASGUARD" gateway --policy "$work/policy.toml" --listen-plain 127.0.0.1:$GW \
    --upstream http://127.0.0.1:$UP --max-connections 20000 --log-level warn & pids+=($!)

for port in $UP $NGX $GW; do
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

run() { # URL -> "rps p99_ms"
    local out; out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -H 'User-Agent: Microsoft Office/16.0 (Microsoft Outlook 16.0)' "$1/owa/")
    local rps p99
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}' <<<"$out")
    echo "$rps $p99"
}

echo "wrk -t$THREADS -c$CONNS -d$DURATION, keep-alive; upstream: nginx static 200"
read -r d_rps d_p99 < <(run http://127.0.0.1:$UP)
read -r n_rps n_p99 < <(run http://127.0.0.1:$NGX)
read -r g_rps g_p99 < <(run http://127.0.0.1:$GW)
awk -v d="$d_rps" -v dp="$d_p99" -v n="$n_rps" -v np="$n_p99" -v g="$g_rps" -v gp="$g_p99" 'BEGIN {
    printf "%-18s %12s %10s %14s\n", "", "requests/s", "p99 ms", "added p99 ms";
    printf "%-18s %12.0f %10.2f %14s\n", "direct", d, dp, "-";
    printf "%-18s %12.0f %10.2f %14.2f\n", "nginx proxy_pass", n, np, np - dp;
    printf "%-18s %12.0f %10.2f %14.2f\n", "casguard gateway", g, gp, gp - dp;
    printf "gateway/nginx requests/s: %.0f%% (target >= 80%%); gateway added p99: %.2f ms (target <= 1 ms)\n", 100 * g / n, gp - dp;
}'
