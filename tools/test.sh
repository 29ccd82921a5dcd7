#!/usr/bin/env bash
# `make test`: every check, in order, each timed. Exits non-zero when one fails,
# after running the rest (so one run shows every failure). The lab's tests start
# the lab when none runs and stop it again (tests/integration/conftest.py).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
failed=()
summary=()
phase() {
    local name=$1; shift
    local start=$SECONDS
    printf '\n=== %s: %s\n' "$name" "$*"
    "$@"
    local rc=$?
    summary+=("$(printf '%-16s %4ss  %s' "$name" $((SECONDS - start)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
    [[ $rc == 0 ]] || failed+=("$name")
}
phase changelog antsibull-changelog lint
phase ansible-lint ansible-lint --nocolor -q
phase sanity tools/sanity.sh
phase unit pytest -q tests/unit
phase integration pytest -q tests/integration
printf '\n=== summary (seconds per phase, total %ss)\n' "$SECONDS"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
