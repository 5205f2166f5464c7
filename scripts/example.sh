#!/usr/bin/env bash
# Builds the example sites in content/ and serves them on http://localhost:8080 with the
# edge's embedded defaults (blog: localhost, shop: shop.localhost, bakery: bakery.localhost).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
need_build_tools

cargo build --release --bin qpage
qpage=target/release/qpage
data=target/example-data
listen=${QPAGE_LISTEN:-127.0.0.1:8080}

for site in blog shop local; do
  "$qpage" build "content/$site"
done
"$qpage" edge add-site blog --data "$data" --host localhost --alias 127.0.0.1 content/blog/dist
"$qpage" edge add-site shop --data "$data" --host shop.localhost content/shop/dist
"$qpage" edge add-site bakery --data "$data" --host bakery.localhost content/local/dist

port=${listen##*:}
echo
echo "serving the example sites (Ctrl-C stops):"
echo "  blog    http://localhost:$port/"
echo "  shop    http://shop.localhost:$port/"
echo "  bakery  http://bakery.localhost:$port/"
exec "$qpage" edge serve --data "$data" --listen "$listen"
