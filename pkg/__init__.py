"""kubestellar-py: the controllers and the runtime they are built on."""
