"""One rank of a distributed job, as its own process: `python -m tests.integration.rank_writer N`.
RANK and RUNSTREAM_RUN_ID come from the environment, as a launcher would set them."""

import os
import sys

import numpy as np

import runstream


def main() -> None:
    points = int(sys.argv[1])
    rank = int(os.environ["RANK"])
    with runstream.start_run(experiment="ranks", run_name="ddp") as run:
        for step in range(points):
            run.log_metrics({"loss": rank * 1_000_000 + step, "lr": 0.1}, step=step)
        run.log_metric_arrays("grad_norm", np.arange(points) + rank * 0.5, np.arange(points))
    print(run.end(), flush=True)


if __name__ == "__main__":
    main()
