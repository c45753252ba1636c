"""Kubernetes' version-skew policy (kubernetes.io/releases/version-skew-policy), as the rules
one cluster's versions must keep: what an upgrade done out of order, or left half done, breaks.

- kube-apiserver: every instance the same version (within one minor only while an upgrade
  is under way);
- kube-controller-manager, kube-scheduler: not newer than the oldest apiserver, at most one
  minor older;
- kubelet, kube-proxy: not newer than the oldest apiserver, at most three minors older.
"""

from __future__ import annotations

import re

VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
OLDER_ALLOWED = {"kube-controller-manager": 1, "kube-scheduler": 1, "kubelet": 3, "kube-proxy": 3}


def minor(version: str) -> tuple[int, int] | None:
    """(major, minor) of "v1.36.3", "1.36.3-rc.1", an image tag "v1.36.3"; None if none."""
    m = VERSION.match(version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def image_version(image: str) -> str:
    """The tag of "registry.k8s.io/kube-scheduler:v1.36.3" (no digest); '' without one."""
    name = image.split("@", 1)[0]
    return name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""


def skew(apiservers: dict[str, str], others: dict[tuple[str, str], str]) -> list[str]:
    """What breaks the policy, in words. `apiservers`: host -> version each answers /version
    with; `others`: (component, where) -> version, the component one of OLDER_ALLOWED's."""
    out = []
    if len(set(apiservers.values())) > 1:
        out.append("apiservers differ: " + ", ".join(f"{h} {v}" for h, v in sorted(apiservers.items()))
                   + " (a finished upgrade leaves them all at one version)")
    minors = [m for v in apiservers.values() if (m := minor(v))]
    if not minors:
        return out
    oldest = min(minors)
    oldest_text = next(v for v in apiservers.values() if minor(v) == oldest)
    for (component, where), version in sorted(others.items()):
        m = minor(version)
        if m is None:
            continue   # unreadable: said in the evidence, not judged
        if m > oldest:
            out.append(f"{component} on {where} is {version}, newer than the oldest apiserver ({oldest_text})")
        elif m[0] != oldest[0] or oldest[1] - m[1] > OLDER_ALLOWED[component]:
            out.append(f"{component} on {where} is {version}, more than {OLDER_ALLOWED[component]} minor(s) "
                       f"older than the oldest apiserver ({oldest_text})")
    return out
