#!/usr/bin/env bash
# Run every test environment (all layers, Python 3.11 to 3.13, lint, typing).
#
#   bash tools/run-tests.sh               # everything tox lists
#   bash tools/run-tests.sh -e abc-py311  # arguments go to tox
#
# Needs only Python 3.11+ with pip: tox goes into .venv-tox, made on first
# use, with tox-uv, which makes each environment's virtualenv with uv (some
# 3 s instead of 15: most of what the 18 environments cost before their
# tests). Interpreters that are missing are skipped, not failures.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv-tox/bin/tox ]; then
    python3 -m venv .venv-tox
    .venv-tox/bin/python -m pip install --quiet --disable-pip-version-check 'tox>=4.67' 'tox-uv>=1.20'
fi

# pyenv's shims only answer for the selected version; put every installed
# 3.x interpreter on PATH so tox finds py311, py312 and py313.
if command -v pyenv >/dev/null 2>&1; then
    for bin in "$(pyenv root)"/versions/3.*/bin; do
        [ -d "$bin" ] && PATH="$PATH:$bin"
    done
    export PATH
fi

exec .venv-tox/bin/tox run "$@"
