"""The version-skew policy's rules (hakit.versions) on hand-made clusters."""

from __future__ import annotations

from hakit.versions import image_version, minor, skew

APIS = {"cp1": "v1.36.3", "cp2": "v1.36.3", "cp3": "v1.36.3"}


def test_versions_and_image_tags_parse() -> None:
    assert minor("v1.36.3") == (1, 36) and minor("1.35.0-rc.1") == (1, 35) and minor("kwok") is None
    assert image_version("registry.k8s.io/kube-scheduler:v1.36.3") == "v1.36.3"
    assert image_version("localhost:5000/kube-proxy") == "" and image_version("r/k:v1.2.3@sha256:ab") == "v1.2.3"


def test_a_cluster_at_one_version_keeps_the_policy_and_lagging_within_it_is_allowed() -> None:
    assert skew(APIS, {("kubelet", "w1"): "v1.36.3", ("kubelet", "w2"): "v1.33.9", ("kube-proxy", "w2"): "v1.33.0",
                       ("kube-scheduler", "cp1"): "v1.35.2", ("kubelet", "w3"): "v1.36.9"}) == []


def test_what_breaks_the_policy_is_named() -> None:
    got = skew({**APIS, "cp3": "v1.35.4"}, {("kubelet", "w1"): "v1.36.0", ("kube-controller-manager", "cp2"): "v1.33.1",
                                            ("kubelet", "w2"): "v1.31.0", ("kubelet", "w3"): "junk"})
    assert got == [
        "apiservers differ: cp1 v1.36.3, cp2 v1.36.3, cp3 v1.35.4 (a finished upgrade leaves them all at one version)",
        "kube-controller-manager on cp2 is v1.33.1, more than 1 minor(s) older than the oldest apiserver (v1.35.4)",
        "kubelet on w1 is v1.36.0, newer than the oldest apiserver (v1.35.4)",
        "kubelet on w2 is v1.31.0, more than 3 minor(s) older than the oldest apiserver (v1.35.4)"], got
