#!/usr/bin/env bash
# The real-page corpus (SPEC §4.1, shared/corpus): runs its scorer on the debug binary.
#   scripts/corpus.sh check   gate on the issue's targets (exit 1 on a regression)
#   scripts/corpus.sh table   print the BENCHMARKS.md section (per-page table + totals)
# The corpus lives beside the project (../shared/corpus) or at $BW_CORPUS; without it, the
# run says so and skips, since the captures are third-party pages that are not in this repo.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
require=${BW_CORPUS_REQUIRE:-standard=97,qa=90,readback=97,traps=100,invented=0,legal=0,errors=0}
corpus=""
for dir in "${BW_CORPUS:-}" ../shared/corpus /work/shared/corpus; do
    if [[ -n "$dir" && -x "$dir/score" ]]; then corpus=$dir; break; fi
done
if [[ -z "$corpus" ]]; then
    echo "corpus: no corpus found (set BW_CORPUS to the shared corpus directory); skipped" >&2
    exit 0
fi
cargo build --quiet --bin browser-worker
case "$mode" in
check)
    "$corpus/score" --binary target/debug/browser-worker --require "$require"
    ;;
table)
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    "$corpus/score" --binary target/debug/browser-worker >"$out" 2>&1
    echo "## Forms on real captured pages (corpus, rules engine) — $(date -u '+%Y-%m-%d %H:%M') UTC"
    echo
    echo "Command: \`scripts/corpus.sh table\` (runs \`shared/corpus/score --binary target/debug/browser-worker\`: every page × both applicants: create, analyze, fill, read back)."
    echo "Targets (issue 14): standard ≥ 97%, qa ≥ 90%, traps 100%, read-back ≥ 97%, invented 0, errors 0."
    echo
    echo '```'
    sed -n '/^page /,/^totals all/p' "$out"
    echo '```'
    ;;
*)
    echo "usage: scripts/corpus.sh check|table" >&2
    exit 2
    ;;
esac
