//go:build tools

// Blank import lets `go mod tidy` resolve kube-state-metrics' main package.
package tools

import _ "k8s.io/kube-state-metrics/v2"
