"""The model lifecycle on top of the registry: promotion gates (what a version must meet before an
alias or a stage names it), promotions through them, deployment records, production monitoring, and
a model's history."""
