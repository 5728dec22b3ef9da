#!/usr/bin/env bash
# Memory under fuzzing: starts the release service on 127.0.0.1 (a fresh data dir), seeds an SVM,
# and lets schemathesis (from the test virtualenv) send generated requests — its coverage,
# fuzzing and stateful phases, fixed seed, every operation that does not make the service
# connect to a generated address — until REQUESTS requests (30,000 by default) have been
# answered or LIMIT seconds have passed. The service's resident memory is sampled every second
# with the number of requests answered so far.
#
# Prints RSS at start and at each third of the requests, and fails unless RSS stays under
# 100 MB and grows by at most 5 MB over the last third (flat). Not part of the test command:
# it takes several minutes; docs/security.md holds the figures of the last run.
#
# Usage: scripts/fuzz-memory.sh   (REQUESTS=30000 LIMIT=1500 SEED=11 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

requests="${REQUESTS:-30000}"
limit="${LIMIT:-1500}"
seed="${SEED:-11}"
password=fuzz-memory-password

scripts/setup-test-env.sh
cargo build --release --locked -p ontap-keymgr --bin ontap-keymgr >&2
binary="$PWD/target/release/ontap-keymgr"
st="$PWD/.venv/bin/st"

work="$(mktemp -d)"
service=""
fuzzer=""
cleanup() {
  [ -n "$fuzzer" ] && kill "$fuzzer" 2>/dev/null || true
  [ -n "$service" ] && kill -INT "$service" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

KEYMGR_ADMIN_PASSWORD="$password" KEYMGR_LOG=info \
  "$binary" serve --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/out" 2>"$work/log" &
service=$!
url=""
for _ in $(seq 300); do
  url="$(sed -n 's/^Listening on //p' "$work/out")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "the service did not start:" >&2; cat "$work/log" >&2; exit 1; }
curl -sk -u "admin:$password" "$url/api/svm/svms" -d '{"name":"svm1"}' -o /dev/null

answered() { grep -c 'request method=' "$work/log" || true; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$service/status"; }

env -u REQUESTS_CA_BUNDLE -u CURL_CA_BUNDLE NO_COLOR=1 "$st" run "$url/docs/api/openapi.json" \
  --auth "admin:$password" --tls-verify false --checks not_a_server_error \
  --phases coverage,fuzzing,stateful --max-examples 100000 --workers 2 --seed "$seed" \
  --exclude-operation-id post_security_key_managers \
  --exclude-operation-id post_security_key_managers_uuid_key_servers \
  --exclude-operation-id patch_security_key_managers_uuid_key_servers_server \
  --exclude-operation-id patch_security_accounts_owner_name \
  >"$work/schemathesis.log" 2>&1 &
fuzzer=$!

samples="$work/samples"
echo "0 $(rss_kb)" >"$samples"
started=$SECONDS
while kill -0 "$fuzzer" 2>/dev/null && [ $((SECONDS - started)) -lt "$limit" ]; do
  sleep 1
  count="$(answered)"
  echo "$count $(rss_kb)" >>"$samples"
  [ "$count" -ge "$requests" ] && break
done
kill "$fuzzer" 2>/dev/null || true
kill -0 "$service" 2>/dev/null || { echo "the service died:" >&2; tail -20 "$work/log" >&2; exit 1; }
grep -q 'panicked' "$work/log" && { echo "a handler panicked:" >&2; grep -m3 panicked "$work/log" >&2; exit 1; }
errors="$(grep -c 'status=5[0-9][0-9] ' "$work/log" || true)"

total="$(tail -1 "$samples" | cut -d' ' -f1)"
# RSS (MB) once a share of the requests had been answered.
rss_at() { awk -v n="$1" '$1 >= n { printf "%.1f", $2 / 1024; exit }' "$samples"; }
start_mb="$(awk 'NR == 1 { printf "%.1f", $2 / 1024 }' "$samples")"
third_mb="$(rss_at $((total / 3)))"
two_thirds_mb="$(rss_at $((total * 2 / 3)))"
end_mb="$(rss_at "$total")"
peak_mb="$(awk '$2 > m { m = $2 } END { printf "%.1f", m / 1024 }' "$samples")"
echo "requests answered: $total in $((SECONDS - started)) s (5xx answers: $errors)"
echo "RSS MB: start $start_mb, 1/3 $third_mb, 2/3 $two_thirds_mb, end $end_mb, peak $peak_mb"
[ "$total" -ge "$requests" ] || { echo "fewer than $requests requests within $limit s" >&2; exit 1; }
[ "$errors" = 0 ] || { echo "$errors answers were 5xx" >&2; exit 1; }
awk -v peak="$peak_mb" -v a="$two_thirds_mb" -v b="$end_mb" 'BEGIN {
  if (peak >= 100) { print "RSS reached " peak " MB (limit 100)" > "/dev/stderr"; exit 1 }
  if (b - a > 5) { print "RSS grew by " b - a " MB over the last third" > "/dev/stderr"; exit 1 }
}'
echo "met: under 100 MB, flat over the last third"
