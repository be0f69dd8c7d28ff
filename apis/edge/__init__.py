"""The edge.kubestellar.io API group."""
