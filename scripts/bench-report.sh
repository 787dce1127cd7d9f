#!/usr/bin/env bash
# Runs the side-by-side benchmarks (benches/compare.rs) and prints, per
# benchmark, sansproto's median and its ratio to each peer and reference,
# from criterion's target/criterion/<group>/<bench>/new/estimates.json.
#
#   bash scripts/bench-report.sh            # default `bench` profile
#   BENCH_LTO=1 bash scripts/bench-report.sh  # fat LTO
#   BENCH_NO_RUN=1 bash scripts/bench-report.sh  # report the last run only
#   BENCH_E2E=0 bash scripts/bench-report.sh     # without the end-to-end run
#
# Then the end-to-end echo benchmark (benches/e2e: sansproto,
# tokio-tungstenite and fastwebsockets servers, and a floor server with no
# library, under one load generator) prints server CPU per message and
# resident memory per idle connection.
#
# Extra arguments go to criterion (a filter, say: `recv_`).
#
# A ratio is how many times faster sansproto is: peer median / sansproto
# median (above 1: sansproto wins). Against a reference (memcpy, read_once,
# simdutf8)
# it is the share of that floor's speed sansproto reaches.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${BENCH_LTO:-0} == 1 ]]; then
    export CARGO_PROFILE_BENCH_LTO=fat
    export CARGO_PROFILE_BENCH_CODEGEN_UNITS=1
    export CARGO_PROFILE_RELEASE_LTO=fat
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1
fi

target_dir=${CARGO_TARGET_DIR:-$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}

if [[ ${BENCH_NO_RUN:-0} != 1 ]]; then
    cargo bench -p sansproto-benches --bench compare -- "$@"
fi

python3 - "$target_dir/criterion" "${BENCH_LTO:-0}" <<'EOF'
import json
import os
import sys

root, lto = sys.argv[1], sys.argv[2] == "1"
ours = ("sansproto", "sansproto_into", "sansproto_append", "sansproto_owned", "sansproto_decoder", "sansproto_connection")
references = ("memcpy", "read_once", "xor_in_place", "simdutf8")


def median(group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        return None


def throughput(group, bench, ns):
    path = os.path.join(root, group, bench, "new", "benchmark.json")
    try:
        with open(path) as f:
            t = json.load(f).get("throughput") or {}
    except (OSError, ValueError):
        return ""
    if "Bytes" in t:
        return "%.2f GB/s" % (t["Bytes"] / ns)
    if "Elements" in t:
        return "%.1f M/s" % (t["Elements"] / ns * 1e3)
    return ""


groups = sorted(
    g for g in os.listdir(root)
    if os.path.isdir(os.path.join(root, g)) and g.startswith(("recv_", "encode_", "prefix_"))
)
print("profile: bench%s" % (" + fat LTO" if lto else ""))
print("ratio = other's median / ours (above 1: ours faster; vs a reference: share of its speed)")
print()
header = "%-28s %-22s %10s %12s   %s" % ("benchmark", "ours", "median", "throughput", "ratios")
print(header)
print("-" * len(header))
for g in groups:
    benches = sorted(os.listdir(os.path.join(root, g)))
    others = [b for b in benches if b not in ours and median(g, b) is not None]
    for o in [b for b in ours if b in benches]:
        m = median(g, o)
        if m is None:
            continue
        ratios = ", ".join(
            "%s %.2fx" % (b, median(g, b) / m)
            for b in sorted(others, key=lambda b: (b in references, b))
        )
        print("%-28s %-22s %8.2fms %12s   %s" % (g, o, m / 1e6, throughput(g, o, m), ratios))
EOF

if [[ ${BENCH_E2E:-1} == 1 && ${BENCH_NO_RUN:-0} != 1 ]]; then
    echo
    (cd benches/e2e && cargo run --release --quiet)
fi
