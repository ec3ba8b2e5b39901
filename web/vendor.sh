#!/bin/sh
# Re-creates the dashboard's vendored chart library from package-lock.json:
# crates/serve/assets/vendor/{uPlot.iife.min.js,uPlot.min.css,uPlot.LICENSE}.
# Those files are committed, so building the binary needs no network; run this
# only after changing the pinned version in web/package.json (then `npm install`
# in web/ to update the lockfile, and commit all of it).
set -eu
web=$(cd "$(dirname "$0")" && pwd)
vendor="$web/../crates/serve/assets/vendor"
cd "$web"
npm ci --no-audit --no-fund
mkdir -p "$vendor"
cp node_modules/uplot/dist/uPlot.iife.min.js "$vendor/uPlot.iife.min.js"
cp node_modules/uplot/dist/uPlot.min.css "$vendor/uPlot.min.css"
cp node_modules/uplot/LICENSE "$vendor/uPlot.LICENSE"
version=$(node -p "require('./node_modules/uplot/package.json').version")
echo "vendored uPlot $version into crates/serve/assets/vendor/"
