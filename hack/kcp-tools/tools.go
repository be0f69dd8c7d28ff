//go:build tools

// Package tools pins the binaries that hack/kcp.sh builds.
package tools

import (
	_ "github.com/kcp-dev/kcp/cmd/kcp"
	_ "github.com/kcp-dev/kcp/cmd/kubectl-workspace"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
