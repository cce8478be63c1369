"""Training-framework integrations: import the one you use (runstream.sdk.integrations.lightning,
.transformers, .keras, .system); each imports its framework itself, so `import runstream` loads none."""
