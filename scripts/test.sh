#!/usr/bin/env bash
# The one test command: installs what the tests need (a Python virtualenv with PyKMIP and
# netapp-ontap, PostgreSQL's server programs), starts a throw-away PostgreSQL server for the run,
# then runs every test of the workspace, including the end-to-end tests that start real PyKMIP
# servers and the real ontap-keymgr binary on 127.0.0.1; then runs the end-to-end suites again
# with every service on PostgreSQL. The server is stopped when this script ends, however
# it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-env.sh
export KEYMGR_TEST_PYTHON="$PWD/.venv/bin/python"
# A plain `requests` session ignores verify=False when REQUESTS_CA_BUNDLE is set (netapp-ontap
# 9.19 and Ansible do not): unset for the tests' own Python helpers.
unset REQUESTS_CA_BUNDLE

# PostgreSQL for the run: test-support's postgres_server example holds it while its standard
# input is open, that is while this script runs (file descriptor 3).
cargo build --locked -q -p test-support --example postgres_server
announced="$(mktemp)"
exec 3> >(exec target/debug/examples/postgres_server >"$announced")
for _ in $(seq 600); do
  grep -q '^PORT ' "$announced" && break
  sleep 0.1
done
KEYMGR_TEST_PG_PORT="$(sed -n 's/^PORT //p' "$announced")"
rm -f "$announced"
if [ -z "$KEYMGR_TEST_PG_PORT" ]; then
  echo "the test PostgreSQL server did not start" >&2
  exit 1
fi
export KEYMGR_TEST_PG_PORT

cargo test --workspace --locked

# The end-to-end suites again, every service on a database of its own on that server: every
# test binary (a file, or a directory's main.rs) that starts services through tests/support
# (`mod support;`), unless it says why not with a line `// postgres-rerun: no (<why>)`. A new
# test runs there without being listed.
rerun=()
for file in crates/ontap-keymgr/tests/*.rs crates/ontap-keymgr/tests/*/main.rs; do
  name="$(basename "$file" .rs)"
  [ "$name" = main ] && name="$(basename "$(dirname "$file")")"
  if grep -q '^mod support;' "$file" && ! grep -q '^// postgres-rerun: no' "$file"; then
    rerun+=(--test "$name")
  fi
done
echo "rerun on PostgreSQL: ${rerun[*]}" >&2
KEYMGR_TEST_STORE=postgres cargo test -p ontap-keymgr --locked "${rerun[@]}"
