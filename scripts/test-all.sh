#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, type-checks, then runs all suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
node scripts/test.mjs "$@"
