"""`runstream import mlflow SOURCE`: an MLflow store's contents as runstream events (client side: it
reads through MLflow's own client, so it runs where `mlflow` is installed, and writes like the SDK)."""
