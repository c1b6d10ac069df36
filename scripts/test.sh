#!/usr/bin/env bash
# The test command, for CI and developers alike: ./scripts/test.sh [cargo test args]
# Suites that need the Docker engine run only with STRATUS_TEST_DOCKER=1
# (.ci/run sets it and starts dockerd); the aws CLI and skopeo are always
# needed (scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test --workspace "$@"
