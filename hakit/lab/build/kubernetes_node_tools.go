//go:build tools

// The node side of a kubeadm cluster: what hakit lab up --kubeadm installs on its hosts.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
