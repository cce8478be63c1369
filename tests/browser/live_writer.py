"""An SDK process logging to a run while a test watches the page: `python -m tests.browser.live_writer
<tracking uri> <run id> <seconds>`. Points go out every 0.2 s (the SDK's flush interval)."""

from __future__ import annotations

import sys
import time

import runstream


def main(uri: str, run_id: str, seconds: float) -> None:
    run = runstream.start_run("live", "training-now", run_id=run_id, tracking_uri=uri, flush_interval=0.2)
    run.log_params({"lr": "0.01"})
    run.flush()
    step = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.log_metric("loss", 1 / (1 + step * 0.05), step=step)
        step += 1
        time.sleep(0.05)
    run.end()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
