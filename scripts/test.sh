#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages as root, npm packages), builds the
# native addon and the TypeScript, checks lint and format, and runs every test with node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm ci --no-audit --no-fund
npx biome check .
# One test file at a time: namespace tests share the machine's two cores and the kernel.
node --test --test-concurrency=1 dist/test
