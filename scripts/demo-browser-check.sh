#!/usr/bin/env bash
# Opens the demo page in headless Chromium and checks that the page's
# WebSocket negotiated permessage-deflate with the browser's default offer
# and got its text and binary messages echoed back.
# Needs Debian's chromium package (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
addr=${1:-127.0.0.1:18080}
cargo build --quiet --example demo
target/debug/examples/demo "$addr" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$profile"' EXIT
profile=$(mktemp -d)
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/${addr%:*}/${addr#*:}) 2>/dev/null && break
  sleep 0.1
done
dom=$(timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --virtual-time-budget=3000 --dump-dom "http://$addr/" 2>/dev/null)
log=$(grep -o '<div id="log">.*</div>' <<<"$dom" || true)
echo "$log" | sed 's/<div class="/\n/g; s/<\/div>//g; s/">/: /g'
grep -q 'open (extensions: permessage-deflate' <<<"$log"
grep -q 'text echo: Hello, κόσμε! 👋' <<<"$log"
grep -q 'binary echo: \[0, 1, 2, 253, 254, 255\]' <<<"$log"
long=$(printf 'echo %.0s' $(seq 40)); long=${long% }
grep -qF "text echo: $long" <<<"$log"
echo "browser demo check: OK"
