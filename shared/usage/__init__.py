"""Spend control: the usage ledger (and, with it, what a period costs)."""
