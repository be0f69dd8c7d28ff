"""A small port of client-go and controller-runtime: clocks, workqueues, controllers, and more."""
