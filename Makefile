# The two entry points of the README. Both do all set-up on a fresh machine.
.PHONY: setup setup-kubeadm audit test lab-down

# What the netns lab needs (make audit); setup-kubeadm adds the kubeadm lab's node side.
setup:
	bash scripts/setup.sh

setup-kubeadm:
	bash scripts/setup.sh --kubeadm

# Bring up the local HA lab (if it is not up) and audit it; reports land in reports/.
audit: setup
	.venv/bin/hakit lab status >/dev/null 2>&1 || { .venv/bin/hakit lab down && .venv/bin/hakit lab up; }
	.venv/bin/hakit audit

# The kit's own tests: unit tests and the netns lab's tests, and beside them the kubeadm
# tier on a kubeadm lab of its own, then a part of the netns tests on a second netns lab
# (scripts/test.sh says which; JUnit XML in reports/suite/).
test: setup-kubeadm
	bash scripts/test.sh

lab-down:
	.venv/bin/hakit lab down
