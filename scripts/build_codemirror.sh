#!/usr/bin/env bash
# Rebuild ivr/static/vendor/codemirror/codemirror.js (CodeMirror 6 with YAML,
# lint and completion) from the npm packages, with their licence files. The packages named
# are pinned; needs node+npm.
# Usage: bash scripts/build_codemirror.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=ivr/static/vendor/codemirror
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp scripts/codemirror/entry.js "$work/entry.js"
(cd "$work" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
  codemirror@6.0.1 @codemirror/state@6.4.1 @codemirror/view@6.34.1 \
  @codemirror/lang-yaml@6.1.1 @codemirror/lint@6.8.2 @codemirror/autocomplete@6.18.1 \
  esbuild@0.24.0 \
  && npx esbuild entry.js --bundle --minify --format=iife --global-name=CM \
       --legal-comments=none --outfile=codemirror.js)
rm -rf "$out" && mkdir -p "$out"
cp "$work/codemirror.js" "$out/codemirror.js"
for pkg in codemirror @codemirror/state @codemirror/view @codemirror/language @codemirror/lang-yaml \
           @codemirror/lint @codemirror/autocomplete @codemirror/commands \
           @codemirror/search @lezer/common @lezer/highlight @lezer/lr @lezer/yaml \
           style-mod w3c-keyname crelt; do
  if [ -f "$work/node_modules/$pkg/LICENSE" ]; then
    version=$(node -p "require('$work/node_modules/$pkg/package.json').version")
    cp "$work/node_modules/$pkg/LICENSE" "$out/$(echo "$pkg" | tr / _ | sed 's/^@//')-$version.LICENSE"
  fi
done
echo "wrote $out/codemirror.js ($(wc -c < "$out/codemirror.js") bytes) and $(ls "$out" | grep -c LICENSE) licence files"
