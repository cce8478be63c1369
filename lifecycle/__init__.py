"""Promotion gates: what a model version must meet before an alias or a stage names it."""
