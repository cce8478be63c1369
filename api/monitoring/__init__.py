"""Production monitoring reads: a served model version's windows, and their drift from a reference."""
