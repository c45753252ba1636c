"""Faults as context managers named by what they break; leaving the block is the
rollback, and it runs on success, failure, exception, Ctrl-C, SIGTERM and SIGHUP.

    from hakit.faults.kinds import StopComponent
    control = Cluster(inventory)
    with StopComponent(control, "cp3", "etcd"):
        ...   # measure while cp3's etcd is down

Before injecting, a fault passes the guard (the cluster is healthy, nothing else is
broken, and this fault cannot cost quorum, the last apiserver, the VIP or a PDB) and
is written to the journal; `repair()` undoes whatever a SIGKILL left behind.

base.py holds the Fault (guard, journal, signals, rollback) and repair(); kinds.py the faults;
journal.py and lock.py the journal and the one-run-per-cluster Lease; nodes.py the node faults'
PDB arithmetic.
"""
