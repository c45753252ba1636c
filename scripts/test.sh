#!/usr/bin/env bash
# hakit's own tests (`make test`) in two lanes side by side, two labs up at any moment
# (the 2-core machine's budget):
#   lane A  the netns session: unit tests and the netns lab's tests, less those of lane B
#   lane B  the kubeadm tier (a kubeadm lab of its own), then LANE_B's netns files on a
#           second netns lab (prefix hkb, its own state dir and subnet)
# Each session writes JUnit XML to reports/suite/, which `bench/suite_time.py --last` reads
# for the lanes' times and the slowest tests. Lane B's output is kept in reports/suite/*.log
# and printed when it ends. Plain `pytest` still runs every test on one netns lab.
#   test.sh [PYTEST ARGS...]   extra arguments go to every session
set -uo pipefail
cd "$(dirname "$0")/.."
out=reports/suite
mkdir -p "$out"
rm -f "$out"/*.xml "$out"/*.rc
py=.venv/bin/pytest
# About as long as the kubeadm tier is short of lane A (bench/suite_time.py --last shows both).
LANE_B=(tests/test_breaks_disruptive.py tests/test_alert_delivery.py)

lane_b() {
    # Each session runs in the background so that a SIGTERM here reaches it at once.
    local child
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' TERM
    "$py" --durations=10 --junitxml="$out/kubeadm.xml" "$@" tests/kubeadm > "$out/kubeadm.log" 2>&1 &
    child=$!
    wait "$child"
    echo $? > "$out/kubeadm.rc"
    HAKIT_TEST_LAB_DIR="$HOME/.local/state/hakit/test-lab-b" HAKIT_TEST_PREFIX=hkb HAKIT_TEST_SUBNET_SKIP=1 \
        "$py" --durations=10 --junitxml="$out/netns-b.xml" "$@" "${LANE_B[@]}" > "$out/netns-b.log" 2>&1 &
    child=$!
    wait "$child"
    echo $? > "$out/netns-b.rc"
}

lane_b "$@" &
lane=$!
# Ctrl-C or SIGTERM reaches every session, whose fixtures remove their labs.
trap 'kill -TERM "$lane" 2>/dev/null; wait "$lane"; exit 130' INT TERM HUP

ignore=(--ignore=tests/kubeadm)
for f in "${LANE_B[@]}"; do ignore+=("--ignore=$f"); done
"$py" --durations=25 --junitxml="$out/netns.xml" "${ignore[@]}" "$@"
netns_rc=$?
wait "$lane"
trap - INT TERM HUP
for log in kubeadm netns-b; do
    echo "===================== lane B: $log (reports/suite/$log.log) ====================="
    cat "$out/$log.log"
done
kubeadm_rc=$(cat "$out/kubeadm.rc" 2>/dev/null || echo 1)
netns_b_rc=$(cat "$out/netns-b.rc" 2>/dev/null || echo 1)
echo "lane A netns session: exit $netns_rc; lane B kubeadm tier: exit $kubeadm_rc, netns-b session: exit $netns_b_rc" \
     "(5: PYTEST ARGS selected none of its tests)"
ok() { [ "$1" -eq 0 ] || [ "$1" -eq 5 ]; }
ok "$netns_rc" && ok "$kubeadm_rc" && ok "$netns_b_rc" && ! [ "$netns_rc$kubeadm_rc$netns_b_rc" = 555 ]
