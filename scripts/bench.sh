#!/usr/bin/env bash
# Measures the service against the practical ceiling of this machine, in one run, and writes
# the figures to docs/performance.md. Not part of the test command: speed targets live here.
#
# It builds in release mode, starts two PyKMIP servers and the service on loopback (a fresh data
# dir, port 0), gives a key manager four key servers, and drives with wrk (installed from
# Debian's packages when missing):
#   1. GET .../key-servers (4 servers), 64 connections;
#   2. the same with fields=connectivity;
#   3. GET /api/security/key-managers?fields=status with 1,000 key managers (4 key servers
#      each, on two fast KMIP responders of the test-support crate), while the health monitor
#      re-checks all 4,000 servers back to back; the round's duration, next to a PyKMIP round;
#   4. durable PATCH (timeout) of a key server;
#   5. POST of one key server (with its KMIP check) next to `kmip check` alone, and POST of 4
#      `records` as a ratio to one;
#   6. RSS idle at start, after the set-up, after 100,000 requests and after the load; the time
#      from start to the first answered request;
#   7. the reference: examples/reference_server.rs, a minimal axum handler returning a body of
#      the same size over the same TLS set-up;
# and (1), (2) and (4) again with the store on PostgreSQL (a throw-away server on this machine).
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
cargo build --release --locked -p test-support --example kmip_responder --example postgres_server >&2
binary=target/release/ontap-keymgr
reference=target/release/examples/reference_server
responder=target/release/examples/kmip_responder

work="$(mktemp -d)"
pids=()
cleanup() {
  # SIGINT for PyKMIP and the service; SIGTERM too, for programs started in the background
  # of this non-interactive shell, which ignore SIGINT (the KMIP responders).
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE holds a line starting with PREFIX and prints the rest of that line.
announced() { # file, prefix
  for _ in $(seq 3000); do
    line="$(grep -m1 "^$2" "$1" 2>/dev/null || true)"
    if [ -n "$line" ]; then echo "${line#"$2"}"; return; fi
    sleep 0.01
  done
  echo "nothing announced in $1:" >&2; cat "$1" >&2; exit 1
}

rss_mb() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

scripts/demo-pki.sh "$work/pki" >/dev/null
kmip_ports=()
# Four PyKMIP servers: (1) uses two (each under two names), (5) four, one per record, since a
# PyKMIP server answers one connection at a time.
for i in 1 2 3 4; do
  mkdir -p "$work/kmip$i"
  .venv/bin/python scripts/kmip_server.py --dir "$work/kmip$i" --cert "$work/pki/server.pem" \
    --key "$work/pki/server.key" --ca "$work/pki/ca.pem" >"$work/kmip$i.log" 2>&1 &
  pids+=($!)
  kmip_ports+=("$(announced "$work/kmip$i.log" "LISTENING ")")
done

monitor_log="warn,ontap_keymgr::domain::health_monitor=info"
# Starts the service on DIR in the background (extra environment first); sets `started_pid` and
# `started_url`.
start_service() { # dir, name, [VAR=value...]
  local dir="$1" name="$2"; shift 2
  env KEYMGR_ADMIN_PASSWORD="$password" KEYMGR_LOG="$monitor_log" "$@" "$binary" serve \
    --data-dir "$dir" --listen 127.0.0.1:0 >"$work/$name.out" 2>"$work/$name.log" &
  started_pid=$!
  pids+=("$started_pid")
  started_url="$(announced "$work/$name.out" "Listening on ")"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# 6: the time from start to the first answered request, the median of three: first starts (a
# fresh data dir each: the HTTPS certificate and the admin, with its Argon2 hash, are made), then
# starts on those data dirs.
time_start() { # dir
  local started=$(date +%s%N)
  start_service "$1" "start-$(basename "$1")-$started" >/dev/null
  until curl -sk -o /dev/null "$started_url/api/cluster"; do sleep 0.002; done
  echo $(( ($(date +%s%N) - started) / 1000000 ))
  kill -INT "$started_pid"; wait "$started_pid" || true
}
first_start_ms="$(for n in 1 2 3; do time_start "$work/start$n"; done | median)"
start_ms="$(for n in 1 2 3; do time_start "$work/start$n"; done | median)"

# The service measured below.
start_service "$work/data" keymgr
keymgr_pid=$started_pid
url=$started_url
until curl -sk -o /dev/null "$url/api/cluster"; do sleep 0.005; done
idle_mb="$(rss_mb "$keymgr_pid")"

api() { # method, path, [body]
  curl -sSk -u "admin:$password" -H Content-Type:application/json -X "$1" "$url$2" \
    ${3:+-d "$3"}
}
pem() { jq -Rs . <"$1"; }
# The key manager measured, with four key servers (each PyKMIP server under two names), through
# the service at $url; prints the path of its key servers.
set_up_key_manager() {
  api POST /api/security/certificates "{\"type\": \"client\", \"name\": \"bench-client\",
    \"public_certificate\": $(pem "$work/pki/client.pem"), \"private_key\": $(pem "$work/pki/client.key")}" >/dev/null
  api POST /api/security/certificates "{\"type\": \"server_ca\", \"name\": \"bench-ca\",
    \"public_certificate\": $(pem "$work/pki/ca.pem")}" >/dev/null
  api POST /api/security/key-managers "{\"external\": {
    \"client_certificate\": {\"name\": \"bench-client\"},
    \"server_ca_certificates\": [{\"name\": \"bench-ca\"}],
    \"servers\": [{\"server\": \"127.0.0.1:${kmip_ports[0]}\"}, {\"server\": \"localhost:${kmip_ports[0]}\"},
                  {\"server\": \"127.0.0.1:${kmip_ports[1]}\"}, {\"server\": \"localhost:${kmip_ports[1]}\"}]}}" >/dev/null
  local km
  km="$(api GET /api/security/key-managers | jq -r '.records[0].uuid')"
  [ "$(api GET "/api/security/key-managers/$km/key-servers" | jq .num_records)" = 4 ] ||
    { echo "set-up failed on $url" >&2; exit 1; }
  echo "/api/security/key-managers/$km/key-servers"
}
servers_path="$(set_up_key_manager)"
setup_mb="$(rss_mb "$keymgr_pid")"

auth="Authorization: Basic $(printf 'admin:%s' "$password" | base64)"
# Prints "requests/s p50_ms p99_ms" of a wrk run against URL (a wrk script sets the method and
# body of a write).
measure() { # url, [header], [wrk script]
  wrk -t2 -c"$connections" -d"$duration" --latency ${2:+-H "$2"} ${3:+-s "$3"} "$1" | awk '
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

# 6: RSS after 100,000 requests (the two runs above made at least that many, else more here).
served=$(( (get_rps + conn_rps) * ${duration%s} ))
if [ "$served" -lt 100000 ]; then
  wrk -t2 -c"$connections" -d"$(( (100000 - served) / (get_rps > 0 ? get_rps : 1) + 1 ))s" \
    -H "$auth" "$url$servers_path" >/dev/null
fi
after_100k_mb="$(rss_mb "$keymgr_pid")"

# 4: durable PATCH of the first key server's timeout: a commit (and its audit record) each.
first_server="127.0.0.1%3A${kmip_ports[0]}"
cat >"$work/patch.lua" <<'LUA'
wrk.method = "PATCH"
wrk.body = '{"timeout": 30}'
wrk.headers["Content-Type"] = "application/json"
LUA
read -r patch_rps patch_p50 patch_p99 < <(measure "$url$servers_path/$first_server" "$auth" "$work/patch.lua")
loaded_mb="$(rss_mb "$keymgr_pid")"

# (1), (2) and (4) again with the store on PostgreSQL: a throw-away server of the test-support
# crate on this machine (held while file descriptor 4 is open), the same key manager.
exec 4> >(exec target/release/examples/postgres_server >"$work/pg.out")
pg_port="$(announced "$work/pg.out" "PORT ")"
start_service "$work/data-pg" keymgr-pg KEYMGR_DATABASE_URL="postgres://keymgr@127.0.0.1:$pg_port/postgres"
pg_url=$started_url
until curl -sk -o /dev/null "$pg_url/api/cluster"; do sleep 0.005; done
sqlite_url=$url
url=$pg_url
pg_servers_path="$(set_up_key_manager)"
url=$sqlite_url
read -r pg_get_rps pg_get_p50 pg_get_p99 < <(measure "$pg_url$pg_servers_path" "$auth")
read -r pg_conn_rps pg_conn_p50 pg_conn_p99 < <(measure "$pg_url$pg_servers_path?fields=connectivity" "$auth")
read -r pg_patch_rps pg_patch_p50 pg_patch_p99 < <(measure "$pg_url$pg_servers_path/$first_server" "$auth" "$work/patch.lua")
kill -INT "$started_pid"; wait "$started_pid" || true
exec 4>&-

# The fast KMIP responders of the test-support crate, for (5) and (3).
for i in 1 2; do
  "$responder" "$work/pki/server.pem" "$work/pki/server.key" "$work/pki/ca.pem" >"$work/responder$i.out" &
  pids+=($!)
done
r1="$(announced "$work/responder1.out" "LISTENING ")"
r2="$(announced "$work/responder2.out" "LISTENING ")"

# 5: POST of key servers to the key manager emptied of its four, each POST undone by DELETEs:
# against PyKMIP, and against the fast responders, where the service's own cost shows (four
# PyKMIP processes checked at once share this machine's two cores).
configured=("127.0.0.1:${kmip_ports[0]}" "localhost:${kmip_ports[0]}" "127.0.0.1:${kmip_ports[1]}" "localhost:${kmip_ports[1]}")
all_servers=("127.0.0.1:${kmip_ports[0]}" "127.0.0.1:${kmip_ports[1]}" "127.0.0.1:${kmip_ports[2]}" "127.0.0.1:${kmip_ports[3]}")
fast=()
encode() { printf '%s' "$1" | sed 's/:/%3A/'; }
empty_key_manager() {
  for server in "${configured[@]}" "${all_servers[@]}" "${fast[@]}"; do
    curl -sSk -o /dev/null -u "admin:$password" -X DELETE "$url$servers_path/$(encode "$server")"
  done
}
post_ms() { # body: milliseconds of a POST that must answer 201
  curl -sSk -o /dev/null -w '%{http_code} %{time_total}\n' -u "admin:$password" \
    -H Content-Type:application/json -X POST "$url$servers_path" -d "$1" |
    awk '$1 != 201 { print "POST answered " $1 > "/dev/stderr"; exit 1 } { printf "%.1f\n", $2 * 1000 }'
}
runs=15
empty_key_manager
one_ms="$(for _ in $(seq $runs); do post_ms "{\"server\": \"${all_servers[0]}\"}"; empty_key_manager; done | median)"
records="$(printf '{"server": "%s"},' "${all_servers[@]}")"
four_ms="$(for _ in $(seq $runs); do post_ms "{\"records\": [${records%,}]}"; empty_key_manager; done | median)"
fast=("127.0.0.1:$r1" "localhost:$r1" "127.0.0.1:$r2" "localhost:$r2")
fast_one_ms="$(for _ in $(seq $runs); do post_ms "{\"server\": \"${fast[0]}\"}"; empty_key_manager; done | median)"
records="$(printf '{"server": "%s"},' "${fast[@]}")"
fast_four_ms="$(for _ in $(seq $runs); do post_ms "{\"records\": [${records%,}]}"; empty_key_manager; done | median)"
check_ms="$(for _ in $(seq $runs); do
  started=$(date +%s%N)
  "$binary" kmip check --server "${all_servers[0]}" --client-cert "$work/pki/client.pem" \
    --client-key "$work/pki/client.key" --server-ca "$work/pki/ca.pem" >/dev/null 2>&1
  echo $(( ($(date +%s%N) - started) / 100000 )) | awk '{ printf "%.1f\n", $1 / 10 }'
done | median)"

# 3: 1,000 key managers on a second instance whose monitor re-checks every server every 30 s,
# its checks spread over 80% of that: (3) is measured while a round runs.
# Set up with the monitor at its default interval (one round at start, of nothing), then
# restarted with rounds back to back.
start_service "$work/data2" scale-setup
scale_pid=$started_pid
scale_url=$started_url
until curl -sk -o /dev/null "$scale_url/api/cluster"; do sleep 0.05; done
fast_servers="{\"server\": \"127.0.0.1:$r1\"}, {\"server\": \"localhost:$r1\"}, {\"server\": \"127.0.0.1:$r2\"}, {\"server\": \"localhost:$r2\"}"
client_pem="$(pem "$work/pki/client.pem")"; client_key="$(pem "$work/pki/client.key")"; ca_pem="$(pem "$work/pki/ca.pem")"
# One curl for all the set-up requests, over one connection: a config file of requests, each
# with its own options (`next` between two starts afresh).
quoted() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }
separator=""
request() { # path, JSON body
  printf '%s' "$separator"
  separator=$'next\n'
  printf 'url = "%s%s"\ninsecure\nuser = "admin:%s"\nheader = "Content-Type: application/json"\n' \
    "$scale_url" "$1" "$password"
  printf 'data = "%s"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$(quoted "$2")"
}
{
  for n in $(seq 0 999); do
    scope=""
    if [ "$n" != 0 ]; then
      scope=", \"svm\": {\"name\": \"vs$n\"}"
      request /api/svm/svms "{\"name\": \"vs$n\"}"
    fi
    request /api/security/certificates "{\"type\": \"client\", \"name\": \"c$n\", \"public_certificate\": $client_pem, \"private_key\": $client_key$scope}"
    request /api/security/certificates "{\"type\": \"server_ca\", \"name\": \"ca$n\", \"public_certificate\": $ca_pem$scope}"
    request /api/security/key-managers "{\"external\": {\"client_certificate\": {\"name\": \"c$n\"}, \"server_ca_certificates\": [{\"name\": \"ca$n\"}], \"servers\": [$fast_servers]}$scope}"
  done
} >"$work/setup.curl"
setup_started=$(date +%s)
curl -sS -K "$work/setup.curl" | sort | uniq -c >"$work/setup.codes"
grep -qv ' 201$' "$work/setup.codes" && { echo "scale set-up failed:" >&2; cat "$work/setup.codes" >&2; exit 1; }
setup_s=$(( $(date +%s) - setup_started ))
# Capacity: rounds back to back (an interval of 1 s, shorter than a round takes).
round_with_all() { # log, [n]: waits for the n-th round of every server (1st); prints how long it took
  local n="${2:-1}"
  until [ "$(grep 'health monitor round' "$1" | grep -c 'key_servers=4000')" -ge "$n" ]; do sleep 0.5; done
  grep 'health monitor round' "$1" | grep 'key_servers=4000' | sed -n "${n}p" | grep -o 'millis=[0-9]*' | cut -d= -f2
}
restart_scale() { # name, interval
  kill -INT "$scale_pid"; wait "$scale_pid" || true
  start_service "$work/data2" "$1" KEYMGR_HEALTH_MONITOR_INTERVAL="$2"
  scale_pid=$started_pid
  scale_url=$started_url
}
restart_scale scale-capacity 1s
capacity_ms="$(round_with_all "$work/scale-capacity.log")"
# The next round resumes the TLS sessions the first one got (the monitor keeps its connectors).
resumed_ms="$(round_with_all "$work/scale-capacity.log" 2)"
# Paced: every 30 s, the checks of a round spread over 80% of it; (3) is measured for 20 s
# from the end of the first round, through most of the next.
restart_scale scale 30s
key_managers="$(curl -sSk -u "admin:$password" "$scale_url/api/security/key-managers?fields=uuid" | jq .num_records)"
[ "$key_managers" = 1000 ] || { echo "expected 1,000 key managers, got $key_managers" >&2; exit 1; }
round_ms="$(round_with_all "$work/scale.log")"
# 8 connections: a few dashboards polling the whole fleet; each answer is about 200 KB.
read -r status_rps status_p50 status_p99 < <(duration=20s connections=8 measure "$scale_url/api/security/key-managers?fields=status" "$auth")
scale_mb="$(rss_mb "$scale_pid")"

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
target "(3) status of 1,000 key managers p99 < 50 ms ($status_p99 ms)" "$status_p99 < 50"
target "(3) the monitor re-checks 4,000 key servers within 30 s ($round_ms ms paced, $capacity_ms ms back to back)" "$round_ms < 30000 && $capacity_ms < 30000"
target "(4) durable PATCH ≥ 2,000/s ($patch_rps/s)" "$patch_rps >= 2000"
target "(5) POST of 4 records ≤ 1.5 × one, fast responders ($fast_four_ms ms vs $fast_one_ms ms; PyKMIP $four_ms vs $one_ms)" "$fast_four_ms <= 1.5 * $fast_one_ms"
target "(6) RSS after 100,000 requests < 60 MB ($after_100k_mb MB)" "$after_100k_mb < 60"
target "(6) start to first answer < 100 ms ($start_ms ms; first start $first_start_ms ms)" "$start_ms < 100"

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
  echo "| (3) \`GET /api/security/key-managers?fields=status\`, 1,000 key managers, monitor running, 8 connections | $status_rps | $status_p50 | $status_p99 |"
  echo "| (4) durable \`PATCH\` of a key server's \`timeout\` | $patch_rps | $patch_p50 | $patch_p99 |"
  echo "| (1) on PostgreSQL | $pg_get_rps | $pg_get_p50 | $pg_get_p99 |"
  echo "| (2) on PostgreSQL | $pg_conn_rps | $pg_conn_p50 | $pg_conn_p99 |"
  echo "| (4) on PostgreSQL | $pg_patch_rps | $pg_patch_p50 | $pg_patch_p99 |"
  echo
  echo "On PostgreSQL (15, on this machine, a throw-away server with its default settings), each"
  echo "request first reads the change counters that tell an instance what other instances"
  echo "committed (one round trip); a PATCH is one transaction plus the counter's bump."
  echo
  echo "(3) Health monitor, 4,000 key servers (1,000 key managers × 4, two fast KMIP responders of"
  echo "the test-support crate, mutual TLS): with rounds back to back, the first round after a start"
  echo "took $capacity_ms ms (full handshakes: the capacity), the next $resumed_ms ms (resuming the TLS sessions"
  echo "the first got); every 30 s, its checks spread over 80% of that, $round_ms ms, and (3) was measured"
  echo "meanwhile. A check of a PyKMIP server takes $check_ms ms (\`kmip check\`, (5)), so PyKMIP"
  echo "servers, one connection at a time each, bound a round far more than the service does."
  echo "Setting up the 1,000 key managers (999 SVMs, 2,000"
  echo "certificates, each key manager's 4 servers KMIP-checked) took $setup_s s; RSS of that instance"
  echo "after the load: $scale_mb MB."
  echo
  echo "(5) POST of one key server (with its KMIP check, PyKMIP): median $one_ms ms over $runs; the"
  echo "same check by \`ontap-keymgr kmip check\` (a process of its own): $check_ms ms; POST of 4"
  echo "\`records\`: $four_ms ms. Against the fast responders: one $fast_one_ms ms, 4 \`records\` $fast_four_ms ms."
  echo
  echo "Memory (RSS): idle at start $idle_mb MB; after the set-up (two certificates, a key manager"
  echo "with four KMIP-checked servers) $setup_mb MB; after 100,000 requests $after_100k_mb MB; after"
  echo "the PATCH load $loaded_mb MB."
  echo "Start to the first answered request, median of three: $start_ms ms; a first start (data dir,"
  echo "HTTPS certificate, the admin's Argon2 hash) $first_start_ms ms."
  echo
  echo "| Target | Verdict |"
  echo "|---|---|"
  printf '%s\n' "${verdicts[@]}"
  echo
  cat docs/performance-notes.md
} >docs/performance.md
cat docs/performance.md
exit "$missed"
