"""The event contract: Avro schemas (avro/*.avsc), their single-object codec and validation."""
