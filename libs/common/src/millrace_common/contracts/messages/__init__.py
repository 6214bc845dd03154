"""Message contracts: one module a family, one discriminated union a topic."""
