"""Artifact storage: one store interface (store.py) with an S3 backend (s3.py, boto3) and a local
folder backend (local.py); safe path rules (paths.py); transfers with streamed sha256 (transfer.py)."""
