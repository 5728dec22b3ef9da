#!/usr/bin/env bash
# Measures the service against the practical ceiling of this machine, in one run, and writes
# the figures to docs/performance.md. Not part of the test command: speed targets live here.
#
# It builds in release mode, starts two PyKMIP servers and the service on loopback (a fresh data
# dir, port 0), gives a key manager four key servers, and drives with wrk (installed from
# Debian's packages when missing):
#   1. GET .../key-servers (4 servers), 64 connections;
#   2. the same with fields=connectivity;
#   6. RSS idle at start, after the set-up and after the load; the time from start to the
#      first answered request;
#   7. the reference: examples/reference_server.rs, a minimal axum handler returning a body of
#      the same size over the same TLS set-up.
# Exits non-zero when a target of docs/performance.md is missed.
#
# Usage: scripts/bench.sh   (BENCH_DURATION=10s by default)
set -euo pipefail
cd "$(dirname "$0")/.."

duration="${BENCH_DURATION:-10s}"
connections=64
password=bench-password

if ! command -v wrk >/dev/null; then
  echo "installing wrk from Debian's packages..." >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi
scripts/setup-test-env.sh
cargo build --release --locked -p ontap-keymgr --bin ontap-keymgr --example reference_server >&2
binary=target/release/ontap-keymgr
reference=target/release/examples/reference_server

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE holds a line starting with PREFIX and prints the rest of that line.
announced() { # file, prefix
  for _ in $(seq 300); do
    line="$(grep -m1 "^$2" "$1" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "${line#"$2"}"; return; fi
    sleep 0.1
  done
  echo "nothing announced in $1:" >&2; cat "$1" >&2; exit 1
}

rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

scripts/demo-pki.sh "$work/pki" >/dev/null
kmip_ports=()
for i in 1 2; do
  mkdir -p "$work/kmip$i"
  .venv/bin/python scripts/kmip_server.py --dir "$work/kmip$i" --cert "$work/pki/server.pem" \
    --key "$work/pki/server.key" --ca "$work/pki/ca.pem" >"$work/kmip$i.log" 2>&1 &
  pids+=($!)
  kmip_ports+=("$(announced "$work/kmip$i.log" "LISTENING ")")
done

# The service, and the time to its first answered request.
started=$(date +%s%N)
KEYMGR_ADMIN_PASSWORD=$password KEYMGR_LOG=warn "$binary" serve --data-dir "$work/data" \
  --listen 127.0.0.1:0 >"$work/keymgr.out" 2>"$work/keymgr.log" &
keymgr_pid=$!
pids+=($keymgr_pid)
url="$(announced "$work/keymgr.out" "Listening on ")"
until curl -sk -o /dev/null "$url/api/cluster"; do sleep 0.005; done
start_ms=$(( ($(date +%s%N) - started) / 1000000 ))
idle_mb="$(rss_mb "$keymgr_pid")"

api() { # method, path, [body]
  curl -sSk -u "admin:$password" -H Content-Type:application/json -X "$1" "$url$2" \
    ${3:+-d "$3"}
}
pem() { jq -Rs . <"$1"; }
api POST /api/security/certificates "{\"type\": \"client\", \"name\": \"bench-client\",
  \"public_certificate\": $(pem "$work/pki/client.pem"), \"private_key\": $(pem "$work/pki/client.key")}" >/dev/null
api POST /api/security/certificates "{\"type\": \"server_ca\", \"name\": \"bench-ca\",
  \"public_certificate\": $(pem "$work/pki/ca.pem")}" >/dev/null
api POST /api/security/key-managers "{\"external\": {
  \"client_certificate\": {\"name\": \"bench-client\"},
  \"server_ca_certificates\": [{\"name\": \"bench-ca\"}],
  \"servers\": [{\"server\": \"127.0.0.1:${kmip_ports[0]}\"}, {\"server\": \"localhost:${kmip_ports[0]}\"},
                {\"server\": \"127.0.0.1:${kmip_ports[1]}\"}, {\"server\": \"localhost:${kmip_ports[1]}\"}]}}" >/dev/null
km="$(api GET /api/security/key-managers | jq -r '.records[0].uuid')"
servers_path="/api/security/key-managers/$km/key-servers"
[ "$(api GET "$servers_path" | jq .num_records)" = 4 ] || { echo "setup failed" >&2; exit 1; }
setup_mb="$(rss_mb "$keymgr_pid")"

auth="Authorization: Basic $(printf 'admin:%s' "$password" | base64)"
# Prints "requests/s p50_ms p99_ms" of a wrk run against URL.
measure() { # url, [header]
  wrk -t2 -c"$connections" -d"$duration" --latency ${2:+-H "$2"} "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) } /^Requests\/sec/ { rps = $2 }
    /Non-2xx/ { print "non-2xx answers: " $0 > "/dev/stderr"; bad = 1 }
    END { if (bad) exit 1; printf "%d %.2f %.2f\n", rps, p50, p99 }'
}

# 7: the reference serves a body of exactly the size of (1)'s.
api GET "$servers_path" >"$work/body.json"
"$reference" "$work/data/tls/cert.pem" "$work/data/tls/key.pem" "$work/body.json" >"$work/ref.out" &
pids+=($!)
ref_url="$(announced "$work/ref.out" "Listening on ")"

read -r ref_rps ref_p50 ref_p99 < <(measure "$ref_url/")
read -r get_rps get_p50 get_p99 < <(measure "$url$servers_path" "$auth")
read -r conn_rps conn_p50 conn_p99 < <(measure "$url$servers_path?fields=connectivity" "$auth")
loaded_mb="$(rss_mb "$keymgr_pid")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
get_share="$(ratio "$get_rps" "$ref_rps")"
get_p99_ratio="$(ratio "$get_p99" "$ref_p99")"
conn_share="$(ratio "$conn_rps" "$get_rps")"

verdicts=()
target() { # description, awk condition
  if awk "BEGIN { exit !($2) }"; then verdicts+=("| $1 | met |"); else verdicts+=("| $1 | **missed** |"); missed=1; fi
}
missed=0
target "(1) throughput ≥ 0.6 × reference ($get_share)" "$get_share >= 0.6"
target "(1) p99 ≤ 1.5 × reference's ($get_p99_ratio)" "$get_p99_ratio <= 1.5"
target "(2) with connectivity ≥ 0.8 × (1) ($conn_share)" "$conn_share >= 0.8"
target "(6) idle RSS at start < 30 MB ($idle_mb MB)" "$idle_mb < 30"
target "(6) RSS after the load < 60 MB ($loaded_mb MB)" "$loaded_mb < 60"
target "(6) start to first answer < 100 ms ($start_ms ms)" "$start_ms < 100"

{
  echo "# Performance"
  echo
  echo "Written by \`scripts/bench.sh\` (run it to refresh; it is not part of the test command)."
  echo "Each run measures the service and the reference in the same minute on the same machine, so the"
  echo "ratios are what to compare across machines. wrk, ${connections} keep-alive connections, 2 threads,"
  echo "${duration} per measurement, HTTPS, Basic auth."
  echo
  echo "Last run: $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -sr), $(rustc --version | cut -d' ' -f1-2),"
  echo "$(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)."
  echo
  echo "| Measurement | requests/s | p50 ms | p99 ms |"
  echo "|---|---|---|---|"
  echo "| (7) reference: fixed body, same TLS | $ref_rps | $ref_p50 | $ref_p99 |"
  echo "| (1) GET key-servers (4 servers) | $get_rps | $get_p50 | $get_p99 |"
  echo "| (2) the same with \`fields=connectivity\` | $conn_rps | $conn_p50 | $conn_p99 |"
  echo
  echo "Memory (RSS): idle at start $idle_mb MB; after the set-up (two certificates, a key manager"
  echo "with four KMIP-checked servers) $setup_mb MB; after the load $loaded_mb MB."
  echo "Start to the first answered request (first start: data dir, HTTPS certificate, admin): $start_ms ms."
  echo
  echo "| Target | Verdict |"
  echo "|---|---|"
  printf '%s\n' "${verdicts[@]}"
  echo
  echo "Not measured yet (issue 11): key managers' \`status\` with 1,000 key managers, durable PATCH"
  echo "throughput, POST latency next to \`kmip check\`, RSS after 100,000 requests, the background"
  echo "connectivity monitor."
} >docs/performance.md
cat docs/performance.md
exit "$missed"
