"""The local HA labs hakit's own tests run on, and `hakit lab` brings up.

netns.py     the netns lab: Lab and its hosts, up, status, down (one network namespace per host)
components.py, topology.py, paths.py, procs.py, health.py   what runs where, and how it is kept
provision.py, pki.py, bootstrap.py, inventory.py   its configs, certificates, first objects, inventory
net.py       bridges, namespaces, links and partitions; a free subnet for a new lab
ctl.py       the netns lab's own systemctl, which disruptive.control calls over SSH
kubeadm.py   the kubeadm lab: LXC system containers (nodes.py) installed by hakit's runbooks
bundle.py, binaries.py, build/   what the labs run, built from their Go modules and cached
"""
