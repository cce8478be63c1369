"""Fits a ridge regression, logs it registered under --model-name with the alias `prod`, and records
what the model predicts for [[1, 2]] (tag `expected_prediction`) for the serving check."""

from __future__ import annotations

import argparse

import mlflow
import mlflow.sklearn
import numpy as np
from mlflow import MlflowClient
from sklearn.linear_model import Ridge


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--model-name", required=True)
    args = parser.parse_args()
    x = np.arange(40, dtype=float).reshape(20, 2)
    y = x @ np.array([0.5, -1.5]) + 3.0
    model = Ridge(alpha=args.alpha).fit(x, y)
    with mlflow.start_run():  # the run `mlflow run` made (MLFLOW_RUN_ID)
        mlflow.log_metric("rmse", float(np.sqrt(np.mean((model.predict(x) - y) ** 2))))
        mlflow.set_tag("expected_prediction", repr(float(model.predict(np.array([[1.0, 2.0]]))[0])))
        info = mlflow.sklearn.log_model(
            model, name="model", registered_model_name=args.model_name, pip_requirements=["scikit-learn"]
        )
    MlflowClient().set_registered_model_alias(args.model_name, "prod", info.registered_model_version)


if __name__ == "__main__":
    main()
