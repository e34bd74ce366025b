#!/bin/sh
# Trunk post_build hook: writes the list of built files and a content version into sw.js.
# Runs in the project directory with TRUNK_STAGING_DIR pointing at the finished build.
set -eu
dir="${TRUNK_STAGING_DIR:?run by trunk as a post_build hook}"
cd "$dir"
files=$(find . -type f ! -name sw.js | sed 's|^\./|/|' | LC_ALL=C sort)
# The version hashes every file's path and bytes, so any change in any file makes a new cache.
version=$(for f in $files; do printf '%s ' "$f"; sha256sum ".$f" | cut -d' ' -f1; done | sha256sum | cut -c1-16)
assets=$(printf '"/"'; for f in $files; do printf ', "%s"' "$f"; done)
sed -i "s|__COUNTERBOOK_VERSION__|$version|; s|__COUNTERBOOK_ASSETS__|[$assets]|" sw.js
echo "service worker stamped: version $version"
