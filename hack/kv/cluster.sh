#!/usr/bin/env bash
# Runs a 3-member `penny aggregator` cluster on loopback until Ctrl-C.
# Usage: hack/kv/cluster.sh PATH/TO/penny [DATA_ROOT]
# APIs: http://127.0.0.1:7371..7373; peers on 7381..7383.
set -euo pipefail
penny=${1:?usage: $0 PATH/TO/penny [DATA_ROOT]}
root=${2:-$(mktemp -d /tmp/penny-kv.XXXXXX)}
cluster="1=http://127.0.0.1:7381,2=http://127.0.0.1:7382,3=http://127.0.0.1:7383"
pids=()
trap 'kill -TERM "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for i in 1 2 3; do
  "$penny" aggregator --id "$i" --data-dir "$root/$i" \
    --listen "127.0.0.1:737$i" --peer-listen "127.0.0.1:738$i" \
    --initial-cluster "$cluster" 2>"$root/$i.log" &
  pids+=($!)
done
echo "data and logs in $root; APIs on http://127.0.0.1:7371..7373" >&2
wait
