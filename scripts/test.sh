#!/usr/bin/env bash
# The one test command: installs what the tests need (a Python virtualenv with PyKMIP and
# netapp-ontap), then runs every test of the workspace, including the end-to-end tests that start
# real PyKMIP servers and the real ontap-keymgr binary on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-test-env.sh
export KEYMGR_TEST_PYTHON="$PWD/.venv/bin/python"
# A plain `requests` session ignores verify=False when REQUESTS_CA_BUNDLE is set (netapp-ontap
# 9.19 and Ansible do not): unset for the tests' own Python helpers.
unset REQUESTS_CA_BUNDLE

cargo test --workspace --locked
