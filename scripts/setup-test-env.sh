#!/usr/bin/env bash
# Creates .venv with what the end-to-end tests need: PyKMIP (the KMIP server the tests talk to),
# schemathesis (which checks the service against its OpenAPI document),
# netapp-ontap (NetApp's Python client) and ansible (for NetApp's netapp.ontap collection): the
# real clients the tests drive the service with.
# Also PostgreSQL's server programs when missing.
# Idempotent: does nothing when .venv already matches scripts/requirements-test.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL's server programs, for the tests that start their own (test-support's postgres.rs):
# Debian's package, installed when missing.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ -z "${KEYMGR_TEST_PG_BIN:-}" ]; then
  echo "installing PostgreSQL from Debian's packages..." >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y postgresql >/dev/null; else sudo apt-get install -y postgresql >/dev/null; fi
fi

venv=.venv
requirements=scripts/requirements-test.txt
stamp="$venv/.requirements-installed"

if [ -f "$stamp" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
echo "setting up $venv (PyKMIP, netapp-ontap, ansible)..." >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
