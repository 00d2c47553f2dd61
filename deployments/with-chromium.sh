#!/usr/bin/env bash
# Runs its arguments with what the console's browser tests need at hand:
# a headless Chromium (Debian's package, installed with apt-get when
# /usr/bin/chromium is missing) and axe-core, the accessibility checker the
# tests run in the page (an npm package, fetched with npm into a cache
# folder, never into the repo; PRISM_AXE_JS names its axe.min.js).
#
#   bash deployments/with-chromium.sh go test -count=1 -run Browser ./cmd/prism-exporter/
#
# CI runs on a fresh machine that has only the toolchains: this script is
# what puts the browser there.
set -euo pipefail

# The axe-core release the tests were written against; a newer one may add
# rules, so it changes deliberately.
AXE_VERSION=4.14.1

if [ ! -x /usr/bin/chromium ]; then
	echo "with-chromium: /usr/bin/chromium is missing: installing Debian's chromium" >&2
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq >/dev/null
	$sudo apt-get install -y -qq -o Dpkg::Use-Pty=0 chromium >/dev/null
	/usr/bin/chromium --version >&2
fi

if [ -z "${PRISM_AXE_JS:-}" ]; then
	cache="${XDG_CACHE_HOME:-$HOME/.cache}/prism-exporter/axe-core-$AXE_VERSION"
	if [ ! -f "$cache/package/axe.min.js" ]; then
		if command -v npm >/dev/null; then
			echo "with-chromium: fetching axe-core $AXE_VERSION into $cache" >&2
			mkdir -p "$cache"
			# npm checks the package against the registry's integrity hash.
			if ! (cd "$cache" && npm pack --silent "axe-core@$AXE_VERSION" >/dev/null &&
				tar -xzf "axe-core-$AXE_VERSION.tgz" package/axe.min.js package/LICENSE); then
				echo "with-chromium: could not fetch axe-core: the accessibility checks will be skipped (failed under CI=true)" >&2
			fi
		else
			echo "with-chromium: npm is missing: the accessibility checks will be skipped (failed under CI=true)" >&2
		fi
	fi
	if [ -f "$cache/package/axe.min.js" ]; then
		export PRISM_AXE_JS="$cache/package/axe.min.js"
	fi
fi

exec "$@"
