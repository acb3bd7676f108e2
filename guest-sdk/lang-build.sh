#!/usr/bin/env bash
# Builds Python and JavaScript teammates into WebAssembly components with
# pinned toolchains, installed on first use into a tools directory:
#
#   guest-sdk/lang-build.sh tools  TOOLS                 # install both toolchains
#   guest-sdk/lang-build.sh python TOOLS APP_DIR OUT     # APP_DIR/app.py -> OUT
#   guest-sdk/lang-build.sh js     TOOLS APP_JS OUT      # APP_JS (an ES module) -> OUT
#
# Python: componentize-py (version in guest-sdk/python/requirements-build.txt)
# in TOOLS/py, a virtual environment this script creates; the SDK package
# guest-sdk/python/swarm_teammate is on the module path.
# JavaScript: jco's bundler (rolldown) and componentize-js, versions locked by
# guest-sdk/js/package-lock.json, installed with `npm ci` into TOOLS/js
# (preview2-shim is pinned there too: componentize-js 0.23 loads it at run
# time but lists it only as a dev dependency). The
# bundle keeps the `swarm:teammate/*` imports external; `wasi:http` is left
# out (a teammate has no network).
#
# A `rules.toml` beside the app (APP_DIR/rules.toml, or next to APP_JS)
# describes the plugin's rules: it is appended to the component as the
# custom section `swarm-rules`, where swarm-host's reports read it.
#
# A missing tool (python3 with venv, node, npm) ends the script with status 3
# and a line `missing tool: <name>` naming it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
wit="$here/../wit"

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1 ($2)" >&2; exit 3; }
}

py_tools() {
  local tools="$1" stamp="$1/py/.installed"
  local want
  want="$(cat "$here/python/requirements-build.txt")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  need python3 "Debian: apt-get install python3 python3-venv"
  rm -rf "$tools/py"
  python3 -m venv "$tools/py" >&2 || { echo "missing tool: python3-venv (Debian: apt-get install python3-venv)" >&2; exit 3; }
  "$tools/py/bin/pip" install --disable-pip-version-check -q -r "$here/python/requirements-build.txt" >&2
  printf '%s' "$want" > "$stamp"
}

js_tools() {
  local tools="$1" stamp="$1/js/.installed"
  local want
  want="$(cat "$here/js/package-lock.json")"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  need node "Debian: apt-get install nodejs"
  need npm "Debian: apt-get install npm"
  rm -rf "$tools/js"
  mkdir -p "$tools/js"
  cp "$here/js/package.json" "$here/js/package-lock.json" "$tools/js/"
  (cd "$tools/js" && npm ci --no-audit --no-fund --loglevel=error >&2)
  printf '%s' "$want" > "$stamp"
}

# Appends file $2 to component $1 as the custom section `swarm-rules`
# (id 0, the payload's size as unsigned LEB128, the name, the bytes).
append_rules() {
  local out="$1" rules="$2" name="swarm-rules" size byte
  size=$(( 1 + ${#name} + $(wc -c < "$rules") ))
  {
    printf '\000'
    while :; do
      byte=$(( size & 127 )); size=$(( size >> 7 ))
      if [ "$size" -eq 0 ]; then printf "\\$(printf %03o "$byte")"; break; fi
      printf "\\$(printf %03o $(( byte | 128 )))"
    done
    printf "\\$(printf %03o ${#name})%s" "$name"
    cat "$rules"
  } >> "$out"
}

cmd="${1:-}"
case "$cmd" in
  tools)
    mkdir -p "$2"
    py_tools "$2"
    js_tools "$2"
    ;;
  python)
    tools="$2" app="$3" out="$4"
    mkdir -p "$tools"
    py_tools "$tools"
    "$tools/py/bin/componentize-py" -d "$wit" -w teammate componentize \
      -p "$here/python" -p "$app" app -o "$out" >&2
    if [ -f "$app/rules.toml" ]; then append_rules "$out" "$app/rules.toml"; fi
    ;;
  js)
    tools="$2" app="$3" out="$4"
    mkdir -p "$tools"
    js_tools "$tools"
    bundle="$(mktemp -d)"
    trap 'rm -rf "$bundle"' EXIT
    "$tools/js/node_modules/.bin/rolldown" "$app" --format esm --external '/^swarm:/' \
      -o "$bundle/bundle.js" >&2
    # The SDK names its imports with the WIT version it was written for; a
    # later 0.1.x of wit/ (which old guests keep loading) needs the same
    # version in the import names, so take it from the WIT being built with.
    version="$(sed -n 's/^package swarm:teammate@\([0-9.]*\);$/\1/p' "$wit/teammate.wit")"
    [ -n "$version" ] || { echo "no 'package swarm:teammate@<version>;' line in $wit/teammate.wit" >&2; exit 1; }
    sed -i "s#\"swarm:teammate/\([a-z-]*\)@[0-9.]*\"#\"swarm:teammate/\1@$version\"#g" "$bundle/bundle.js"
    node "$tools/js/node_modules/@bytecodealliance/componentize-js/src/cli.js" "$bundle/bundle.js" \
      --wit "$wit" -n teammate -d http fetch-event -o "$out" >&2
    rules="$(dirname "$app")/rules.toml"
    if [ -f "$rules" ]; then append_rules "$out" "$rules"; fi
    ;;
  *)
    echo "usage: $0 tools TOOLS | python TOOLS APP_DIR OUT | js TOOLS APP_JS OUT" >&2
    exit 2
    ;;
esac
