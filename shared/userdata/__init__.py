"""A user's data on request: exported as an archive (export), erased from every store (erasure)."""
