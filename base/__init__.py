"""What every server stage shares: the ClickHouse connection, API errors and responses, and auth."""
