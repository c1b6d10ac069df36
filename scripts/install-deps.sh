#!/usr/bin/env bash
# Installs the tools the test suite drives, on Debian 12:
#   docker.io       the Docker engine and CLI (docker build/run/push/pull tests)
#   skopeo          copies OCI layouts to and from the registry
#   runc            the OCI runtime
#   busybox-static  a static /bin/busybox to put in FROM-scratch test images
#   debootstrap     builds the stand-in for public.ecr.aws/lambda/python:3.11 (tests/images)
#   awscli (PyPI)   the real AWS CLI the API tests run
#   awslambdaric    (PyPI) the official Python runtime interface client
# Idempotent and quiet; safe to run again. Starting dockerd is .ci/run's job.
set -euo pipefail

APT_PACKAGES=(docker.io skopeo runc busybox-static debootstrap)
AWSCLI_VERSION=1.45.11 # AWS CLI v1; AWS_ENDPOINT_URL needs >= 1.29

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo); fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: apt-get install ${missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The machine's Python is pyenv's; a non-interactive shell may not have it on
# PATH (.bashrc sets it up). Callers that run `aws` need the same PATH fix.
if [ -d "$HOME/.pyenv/shims" ] && ! command -v pyenv >/dev/null 2>&1; then
    export PATH="$HOME/.pyenv/shims:$HOME/.pyenv/bin:$PATH"
fi

if ! aws --version 2>&1 | grep -q "^aws-cli/${AWSCLI_VERSION} "; then
    echo "install-deps: pip install awscli==${AWSCLI_VERSION}"
    pip_flags=(--quiet --disable-pip-version-check)
    if ! python3 -m pip --version >/dev/null 2>&1; then
        # Debian's own Python: no pip until python3-pip, and PEP 668 applies.
        DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq python3-pip >/dev/null
        pip_flags+=(--break-system-packages)
    fi
    if [ "$(id -u)" -eq 0 ]; then pip_flags+=(--root-user-action=ignore); fi
    python3 -m pip install "${pip_flags[@]}" "awscli==${AWSCLI_VERSION}"
    # pyenv only sees new console scripts after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# PyPI packages the tests use besides the CLI (the Python runtime interface client).
if ! python3 -c 'import awslambdaric' >/dev/null 2>&1; then
    echo "install-deps: pip install -r crates/runtime-api/requirements-test.txt"
    python3 -m pip install --quiet --disable-pip-version-check -r "$(dirname "$0")/../crates/runtime-api/requirements-test.txt"
fi

aws --version >/dev/null 2>&1 || { echo "install-deps: aws is not on PATH after pip install" >&2; exit 1; }
command -v skopeo >/dev/null && command -v dockerd >/dev/null && test -x /bin/busybox
