"""Into the log on the server side: the HTTP gateway (POST /api/v1/events) takes framed events,
validates them and appends them. (The SDK that sends them is sdk/; MLflow's writes are mlflow_api/.)"""
