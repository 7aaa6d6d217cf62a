"""Durable workflows: multi-step agent work that survives crashes (see shared.workflows.journal)."""
