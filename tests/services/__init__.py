"""Real Kafka, ClickHouse and S3 (SeaweedFS) servers on 127.0.0.1 for the tests, started without Docker."""
