#!/usr/bin/env bash
# The main job: a tour of the transports on loopback (tools/demo.py).
#
# Needs only Python 3.11+ with pip: the four distributions (built from
# packages/) and trustme go into .venv-demo, made on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv-demo/bin/python ]; then
    python3 -m venv .venv-demo
fi
.venv-demo/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    ./packages/transports-abc ./packages/transports-selector ./packages/transports-socket ./packages/transports-composite
.venv-demo/bin/python -m pip install --quiet --disable-pip-version-check 'typing-extensions>=4.6' 'trustme>=1.1'
exec .venv-demo/bin/python tools/demo.py "$@"
