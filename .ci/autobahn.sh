#!/usr/bin/env bash
# Install Autobahn|Testsuite's `wstest` (Python 2 only) into its own virtualenv, idempotently.
#
# tests/feed/test_autobahn.py runs its fuzzing client against our echo server. wstest needs
# Python 2.7: pyenv's 2.7.18 if present (PYTHON2 overrides). Prints the wstest path on success.
# Versions are pinned in autobahn-constraints.txt beside this script (a set that installs and
# runs here: autobahntestsuite 25.10.1 on Twisted 19.10). Idempotent: a working wstest is kept.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${TICKWIRE_AUTOBAHN_HOME:-$HOME/.cache/tickwire-autobahn}"
VENV="$PREFIX/venv"
WSTEST="$VENV/bin/wstest"
if [ -x "$WSTEST" ] && "$WSTEST" --help >/dev/null 2>&1; then
    echo "$WSTEST"
    exit 0
fi
PY2="${PYTHON2:-}"
if [ -z "$PY2" ]; then
    for cand in "$(pyenv root 2>/dev/null)/versions/2.7.18/bin/python" python2.7 python2; do
        if command -v "$cand" >/dev/null 2>&1; then PY2="$(command -v "$cand")"; break; fi
    done
fi
if [ -z "$PY2" ]; then
    echo "autobahn.sh: no Python 2.7 found (install pyenv's 2.7.18 or set PYTHON2)" >&2
    exit 1
fi
mkdir -p "$PREFIX"
rm -rf "$VENV"
"$PY2" -m pip --version >/dev/null 2>&1 || "$PY2" -m ensurepip --user >/dev/null
"$PY2" -m virtualenv --version >/dev/null 2>&1 || "$PY2" -m pip install --quiet --user 'virtualenv==20.15.1'
"$PY2" -m virtualenv --quiet "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'setuptools<45' 'wheel<0.38'
"$VENV/bin/pip" install --quiet --disable-pip-version-check \
    -c "$HERE/autobahn-constraints.txt" autobahntestsuite
"$WSTEST" --help >/dev/null
echo "$WSTEST"
