#!/usr/bin/env bash
# Installs what the tests need and this machine lacks, so that `make test` passes on a fresh
# clone: redis-server and Chromium from Debian's packages (as root, or through sudo), any
# further Debian packages named as arguments, and the npm packages the tests read
# (axe-core, Redocly CLI) when node_modules does not hold what package-lock.json lists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_chromium() {
	[[ -n ${CHROME_PATH:-} ]] && return 0
	local name
	for name in chromium chromium-browser google-chrome google-chrome-stable; do
		command -v "$name" >/dev/null && return 0
	done
	return 1
}

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
have_chromium || missing+=(chromium)
command -v npm >/dev/null || missing+=(npm)
for pkg in "$@"; do
	command -v "$pkg" >/dev/null || missing+=("$pkg")
done

if ((${#missing[@]})); then
	if [[ $(id -u) -eq 0 ]]; then
		sudo=()
	elif command -v sudo >/dev/null; then
		sudo=(sudo)
	else
		echo "the tests need ${missing[*]}: install them (apt-get install -y ${missing[*]}) and run again" >&2
		exit 1
	fi
	echo "installing: ${missing[*]}"
	"${sudo[@]}" apt-get update -qq
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! npm ls --all >/dev/null 2>&1; then
	npm ci --no-audit --no-fund
fi
