#!/usr/bin/env bash
# The whole test suite: installs what it needs (Debian packages as root, npm packages), builds the
# native addon and the TypeScript, checks lint and format, and runs every test with node's runner.
# Ends with the skipped tests by reason; in CI (CI=true) fails when a test skipped for a reason CI
# must not have (not root, no ../shared, a missing package).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm ci --no-audit --no-fund
npx biome check .
# One test file at a time: namespace tests share the machine's two cores and the kernel. Only
# *.test.js files: the helpers beside them (fakes, child scripts) are not tests.
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
# Two reporters: the usual one on stdout (TAP when it is not a terminal, as node picks; its closing
# "# tests N", "# pass N", "# fail N", "# skipped N" lines stay as they were), and one that writes
# every skipped test, with its reason, to a file for the check after the run.
reporter=tap
[[ -t 1 ]] && reporter=spec
skips=$(mktemp -t clatd-skips.XXXXXX)
trap 'rm -f "$skips"' EXIT
status=0
node --test --test-concurrency=1 \
  --test-reporter="$reporter" --test-reporter-destination=stdout \
  --test-reporter=./dist/test/helpers/skip-reporter.js --test-reporter-destination="$skips" \
  "${files[@]}" || status=$?
# Skips by reason; with CI=true, a skip whose reason is not allowed on CI fails the run
# (test/helpers/skip-check.ts holds the list and why).
node dist/test/helpers/skip-check.js "$skips" || status=1
exit "$status"
