"""The event contract: Avro schemas (avro/*.avsc), their single-object codec and validation, the
HTTP framing of events, the wire shapes of reads, and the rules for artifact paths."""
