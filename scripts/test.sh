#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages as root, npm packages), builds the
# native addon and the TypeScript, checks lint and format, and runs every test with node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm ci --no-audit --no-fund
npx biome check .
# One test file at a time: namespace tests share the machine's two cores and the kernel. Only
# *.test.js files: the helpers beside them (fakes, child scripts) are not tests.
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency=1 "${files[@]}"
