"""Turning a user's call into durable events: the SDK, the log transports and the HTTP gateway."""
