"""The runstream SDK for training code (re-exported by the `runstream` package)."""
