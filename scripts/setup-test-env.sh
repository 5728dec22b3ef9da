#!/usr/bin/env bash
# Creates .venv with what the end-to-end tests need: PyKMIP (the KMIP server the tests talk to),
# schemathesis (which checks the service against its OpenAPI document),
# netapp-ontap (NetApp's Python client) and ansible (for NetApp's netapp.ontap collection): the
# real clients the tests drive the service with.
# Idempotent: does nothing when .venv already matches scripts/requirements-test.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

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
