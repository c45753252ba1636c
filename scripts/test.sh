#!/usr/bin/env bash
# hakit's own tests (`make test`): ruff first, then two lanes side by side, each pytest session
# with a lab of its own (state dir, prefix, subnet):
#   lane 1: the unit tests and the netns lab's tests, but for those of $LANE_TWO;
#   lane 2: the kubeadm tier (a kubeadm lab), then the netns tests of $LANE_TWO on a second
#           netns lab, so that two labs, never three, share the machine's cores at any moment.
# Each session writes JUnit XML to reports/suite/ (netns, kubeadm, netns-2), which
# `bench/suite_time.py --last` reads for the lanes' and tiers' times and the slowest tests.
# Lane 2's output is kept in reports/suite/kubeadm.log and netns-2.log, printed when it ends.
#   test.sh [PYTEST ARGS...]   extra arguments go to every session
set -uo pipefail
cd "$(dirname "$0")/.."
out=reports/suite
mkdir -p "$out"
rm -f "$out"/*.xml "$out"/*.log "$out"/*.rc   # bench/suite_time.py --last reads what is here: this run's only
py=.venv/bin/pytest

# The netns tests lane 2 runs after the kubeadm tier: chosen so that both lanes take about as
# long (bench/suite_time.py --last prints each lane's minutes; move a file when they drift apart).
LANE_TWO=(tests/lab/test_alert_delivery.py tests/lab/test_runbooks.py tests/lab/test_stress.py tests/lab/test_incidents_lab.py)

# Lint and import order first (pyproject.toml [tool.ruff]): a second, not a lab's minutes.
.venv/bin/ruff check . || { echo "ruff found the above: fix them (ruff check --fix . fixes most)"; exit 1; }

lane_two() {
    local child=""
    trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' TERM
    "$py" --durations=10 --junitxml="$out/kubeadm.xml" "$@" tests/kubeadm > "$out/kubeadm.log" 2>&1 &
    child=$!; wait "$child"; echo $? > "$out/kubeadm.rc"
    HAKIT_TEST_LAB_DIR="$HOME/.local/state/hakit/test-lab-2" HAKIT_TEST_PREFIX=hku \
        "$py" --durations=10 --junitxml="$out/netns-2.xml" "$@" "${LANE_TWO[@]}" > "$out/netns-2.log" 2>&1 &
    child=$!; wait "$child"; echo $? > "$out/netns-2.rc"
}
lane_two "$@" &
lane=$!
# Lane 1 runs in the background too: bash runs a trap only once the foreground command ends,
# and `wait` returns at once. Ctrl-C or SIGTERM reaches every session, whose fixtures remove
# their labs.
"$py" --durations=25 --junitxml="$out/netns.xml" --ignore=tests/kubeadm "${LANE_TWO[@]/#/--ignore=}" "$@" &
one=$!
trap 'kill -TERM "$one" "$lane" 2>/dev/null; wait "$one" "$lane"; exit 130' INT TERM HUP
wait "$one"
netns_rc=$?
wait "$lane"
trap - INT TERM HUP
for tier in kubeadm netns-2; do
    echo "===================== $tier (reports/suite/$tier.log) ====================="
    cat "$out/$tier.log"
done
kubeadm_rc=$(cat "$out/kubeadm.rc" 2>/dev/null || echo 1)
netns2_rc=$(cat "$out/netns-2.rc" 2>/dev/null || echo 1)
echo "netns session: exit $netns_rc; kubeadm tier: exit $kubeadm_rc; netns session 2: exit $netns2_rc"
[ "$netns_rc" -eq 0 ] && [ "$kubeadm_rc" -eq 0 ] && [ "$netns2_rc" -eq 0 ]
