#!/usr/bin/env bash
# The one command that runs every test: installs what is missing, type-checks, checks the import rules, then runs all suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run --silent typecheck
npm run --silent check:architecture
node scripts/test.mjs "$@"
