#!/usr/bin/env bash
# hakit's own tests (`make test`): ruff first, then the netns session (unit tests and the netns lab's) and
# the kubeadm tier (a kubeadm lab of its own) run side by side, each in its own pytest
# session with its own lab, prefix and subnet. Each writes JUnit XML to reports/suite/,
# which `bench/suite_time.py --last` reads for the tiers' times and the slowest tests.
# The kubeadm tier's output is kept in reports/suite/kubeadm.log and printed when it ends.
#   test.sh [PYTEST ARGS...]   extra arguments go to both sessions
set -uo pipefail
cd "$(dirname "$0")/.."
out=reports/suite
mkdir -p "$out"
rm -f "$out"/*.xml "$out"/*.log   # bench/suite_time.py --last reads what is here: this run's only
py=.venv/bin/pytest

# Lint and import order first (pyproject.toml [tool.ruff]): a second, not a lab's minutes.
.venv/bin/ruff check . || { echo "ruff found the above: fix them (ruff check --fix . fixes most)"; exit 1; }

"$py" --durations=10 --junitxml="$out/kubeadm.xml" "$@" tests/kubeadm > "$out/kubeadm.log" 2>&1 &
kubeadm=$!
# Ctrl-C or SIGTERM reaches both sessions, whose fixtures remove their labs.
trap 'kill -TERM "$kubeadm" 2>/dev/null; wait "$kubeadm"; exit 130' INT TERM HUP

"$py" --durations=25 --junitxml="$out/netns.xml" --ignore=tests/kubeadm "$@"
netns_rc=$?
wait "$kubeadm"
kubeadm_rc=$?
trap - INT TERM HUP
echo "===================== kubeadm tier (reports/suite/kubeadm.log) ====================="
cat "$out/kubeadm.log"
echo "netns session: exit $netns_rc; kubeadm tier: exit $kubeadm_rc"
[ "$netns_rc" -eq 0 ] && [ "$kubeadm_rc" -eq 0 ]
