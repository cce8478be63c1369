"""Artifact storage: one store interface (store.py) with an S3 backend (s3.py, boto3) and a local
folder backend (local.py), picked by the root's scheme (stores.py). The path rules are part of the
contract (schemas/artifact_paths.py); the SDK's transfers are sdk/artifacts.py."""
