//go:build tools

// Package tools pins the helm binary that hack/kcp.sh builds (`hack/kcp.sh path helm`).
// It is a module of its own so that its go.mod/go.sum, the key of its build cache,
// change independently of kcp's (hack/kcp-tools).
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
