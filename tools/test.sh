#!/usr/bin/env bash
# `make test`: every check, in order, each timed. Exits non-zero when one fails,
# after running the rest (so one run shows every failure). The lab's tests start
# the lab when none runs and stop it again (tests/integration/conftest.py).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
failed=()
summary=()
# pytest's own one-line-per-failure summary, repeated at the very end: CI shows the
# tail of the output, and a failure must name itself there.
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pytest_logged() {
    local name=$1; shift
    pytest -rfE "$@" 2>&1 | tee "$logs/$name.log"
    return "${PIPESTATUS[0]}"
}
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
phase ansible-lint ansible-lint --nocolor -q --strict
phase sanity tools/sanity.sh
phase unit pytest_logged unit -q tests/unit
# One lab for the integration tests and molecule: started here unless one runs (then
# both reuse it), and stopped here, checking that no process of it is left.
started_lab=
if ! python -m keneyapp_lab status >/dev/null 2>&1; then
    phase lab-up env KENEYAPP_LAB_OWNER=make-test python -m keneyapp_lab up
    started_lab=1
fi
# The integration tests in two lanes at once: the tests that release to keneyapp-dev or
# share the lab's WAL archiving run one after another (lane A); the module and database
# tests that keep to namespaces, databases and clusters of their own run beside them
# (lane B, its output printed after lane A's). Both reuse the lab started above.
LANE_B=(test_alembic_migration test_alert_rules_role test_audit_callback test_audit_chain test_bluegreen_switch
        test_canary_host_routers test_canary_weight test_db_backup test_grafana_dashboard_queries test_http_probe test_lab
        test_lab_database test_metrics_gate test_migration_lint_module test_notify_module test_release_metrics
        test_rollout_modules)
integration() {
    local lane_b=() ignore=() name
    for name in "${LANE_B[@]}"; do
        lane_b+=("tests/integration/$name.py")
        ignore+=("--ignore=tests/integration/$name.py")
    done
    pytest -rfE -q -p no:cacheprovider --durations=10 "${lane_b[@]}" > "$logs/integration-b.log" 2>&1 &
    local pid_b=$!
    pytest_logged integration-a -q --durations=25 "${ignore[@]}" tests/integration
    local rc_a=$?
    wait "$pid_b"
    local rc_b=$?
    printf '\n--- integration, lane B (modules and databases of their own), beside lane A:\n'
    cat "$logs/integration-b.log"
    ((rc_a == 0 && rc_b == 0))
}
phase integration integration
phase molecule molecule test --all
if [[ -n $started_lab ]]; then
    phase lab-down python -m keneyapp_lab down
fi
printf '\n=== summary (seconds per phase, total %ss)\n' "$SECONDS"
printf '%s\n' "${summary[@]}"
echo "phases: $((${#summary[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
    echo "FAILED: ${failed[*]}"
    grep -hE '^(FAILED|ERROR) ' "$logs"/*.log 2>/dev/null | cut -c1-400
    exit 1
fi
