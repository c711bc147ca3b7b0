#!/usr/bin/env bash
# Flamegraph of one benchmark profile: perf with the software clock (hardware counters
# are not available on these machines) and inferno to fold and render.
#
#   bash profiles/flamegraph.sh [profiles/default.toml] [profiles/out/flamegraph.svg]
#
# Stacks. `perf record -g` walks frame pointers, which release builds omit (the stacks
# were 1-3 frames deep: a thread name straight to a leaf). So the `profiling` profile is
# built here with `-C force-frame-pointers=yes`, into its own target folder
# (target/flamegraph) so the flag does not invalidate the usual release build. The
# standard library comes prebuilt, without frame pointers: where a walk passes through a
# std function that does not keep one it can lose that function's caller (the measured
# stacks still go from start_thread through std's thread entry into the parties). DWARF
# call graphs (`--call-graph dwarf`) would unwind std too, but copy 8 KiB of stack per
# sample (hundreds of MB for one profile), cut deeper stacks at that size and take
# minutes in `perf script`.
#
# Check. The folded stacks are written beside the SVG (`.folded`), and the script fails
# if the median depth over all samples (frames below the thread name) is under
# MIN_DEPTH (default 6): the sign that the frame pointers were lost again.
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${1:-profiles/default.toml}
out=${2:-profiles/out/flamegraph.svg}
min_depth=${MIN_DEPTH:-6}
mkdir -p "$(dirname "$out")"
if ! command -v perf >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq linux-perf
fi
if ! command -v inferno-collapse-perf >/dev/null 2>&1; then
  cargo install inferno --locked
fi
target=target/flamegraph
RUSTFLAGS="${RUSTFLAGS:-} -C force-frame-pointers=yes" CARGO_TARGET_DIR=$target \
  cargo build --profile profiling -p pmsm-engine --bin pmsm
data=$(mktemp /tmp/pmsm-perf.XXXXXX)
trap 'rm -f "$data"' EXIT
perf record -e cpu-clock -g -o "$data" -- "$target/profiling/pmsm" bench --profile "$profile" > /dev/null
folded=${out%.svg}.folded
perf script -i "$data" 2>/dev/null | inferno-collapse-perf > "$folded"
inferno-flamegraph --title "pmsm bench $(basename "$profile")" < "$folded" > "$out"
echo "wrote $out and $folded"
# One folded line is `thread;frame;…;leaf COUNT`: its depth is the number of `;`.
median=$(awk '{ n = $NF; print gsub(/;/, ";"), n }' "$folded" | sort -n -k1,1 |
  awk '{ d[NR] = $1; c[NR] = $2; total += $2 }
    END { for (i = 1; i <= NR; i++) { seen += c[i]; if (2 * seen >= total) { print d[i]; exit } } print 0 }')
echo "median stack depth: $median frames (over all samples; at least $min_depth expected)"
if [ "$median" -lt "$min_depth" ]; then
  echo "error: stacks are too shallow (median $median < $min_depth): frame pointers missing?" >&2
  exit 1
fi
