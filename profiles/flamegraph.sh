#!/usr/bin/env bash
# Flamegraph of one benchmark profile: perf with the software clock (hardware counters
# are not available on these machines) and inferno to fold and render.
#
#   bash profiles/flamegraph.sh [profiles/default.toml] [profiles/out/flamegraph.svg]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-profiles/default.toml}
out=${2:-profiles/out/flamegraph.svg}
mkdir -p "$(dirname "$out")"
if ! command -v perf >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq linux-perf
fi
if ! command -v inferno-collapse-perf >/dev/null 2>&1; then
  cargo install inferno --locked
fi
cargo build --profile profiling -p pmsm-engine --bin pmsm
data=$(mktemp /tmp/pmsm-perf.XXXXXX)
perf record -e cpu-clock -g -o "$data" -- target/profiling/pmsm bench --profile "$profile" > /dev/null
perf script -i "$data" 2>/dev/null | inferno-collapse-perf | inferno-flamegraph --title "pmsm bench $(basename "$profile")" > "$out"
rm -f "$data"
echo "wrote $out"
