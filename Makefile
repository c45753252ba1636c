# The two entry points of the README. Both do all set-up on a fresh machine.
.PHONY: setup audit test lab-down

setup:
	bash scripts/setup.sh

# Bring up the local HA lab (if it is not up) and audit it; reports land in reports/.
audit: setup
	.venv/bin/hakit lab status >/dev/null 2>&1 || { .venv/bin/hakit lab down && .venv/bin/hakit lab up; }
	.venv/bin/hakit audit

# The kit's own tests: unit tests and the netns lab's tests, then the kubeadm tier on a
# kubeadm lab of its own (two sessions, so the two labs never share the machine at once).
test: setup
	.venv/bin/pytest --durations=25 --ignore=tests/kubeadm
	.venv/bin/pytest --durations=10 tests/kubeadm

lab-down:
	.venv/bin/hakit lab down
