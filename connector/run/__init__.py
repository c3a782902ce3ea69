"""A tenant's night: sync, reconcile, plan, approve, execute."""
