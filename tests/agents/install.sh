#!/usr/bin/env bash
# Install the pinned agent CLIs (Claude Code and Codex) from npm into a prefix of their own
# (default: .agents/ in the repo, git-ignored), not globally. Installs Node.js and npm from
# Debian first when npm is missing. Quick when already done: a stamp names the versions.
#
#   tests/agents/install.sh [PREFIX]      -> prints the bin directory on its last line
#
# Exit status 3: node/npm are missing and could not be installed (the tests then skip).
set -euo pipefail

# The versions the harness was written against (tests/agents/PROTOCOL.md); bump together.
CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0

cd "$(dirname "$0")/../.."
PREFIX="${1:-${GW_AGENTS_PREFIX:-$PWD/.agents}}"
STAMP="$PREFIX/.installed-claude-code-$CLAUDE_CODE_VERSION-codex-$CODEX_VERSION"
BIN="$PREFIX/node_modules/.bin"

if [ ! -f "$STAMP" ]; then
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "agents: installing nodejs and npm (apt-get)" >&2
        install_node="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm"
        if [ "$(id -u)" = 0 ]; then sh -c "$install_node" >&2 || exit 3
        elif command -v sudo >/dev/null 2>&1; then sudo sh -c "$install_node" >&2 || exit 3
        else echo "agents: no npm and not root" >&2; exit 3; fi
        command -v npm >/dev/null 2>&1 || exit 3
    fi
    echo "agents: npm install @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION @openai/codex@$CODEX_VERSION into $PREFIX" >&2
    mkdir -p "$PREFIX"
    start=$(date +%s)
    # The native binaries come in the packages' platform-specific optional dependencies.
    npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION" >&2
    "$BIN/claude" --version >&2
    "$BIN/codex" --version >&2
    echo "agents: installed in $(( $(date +%s) - start ))s" >&2
    rm -f "$PREFIX"/.installed-*
    touch "$STAMP"
fi
echo "$BIN"
