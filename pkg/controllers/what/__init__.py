"""The what resolver: which workload objects each EdgePlacement selects (see :mod:`.select`)."""
