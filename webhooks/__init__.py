"""Registry events → the webhooks subscribed to them (MLflow's webhooks, 3.3+): read from the log by a
consumer group of their own, after the projector, and POSTed signed, at least once."""
