"""Child process that freezes with tf-keras (Keras 2).

tf-keras only works when TF_USE_LEGACY_KERAS=1 is set before TensorFlow is
imported, which the graphtool process (already on Keras 3) cannot do for
itself; graphtool.freeze spawns `python -m graphtool.freeze.worker REQUEST RESULT`
with that variable set.  REQUEST holds {"jobs": [...]}; RESULT gets one entry per
job: {"sidecar": ...}, {"error": ..., "exit_code": n} or {"crash": traceback}.
The worker stops at the first crash (a graphtool bug), not at input errors.
"""
from __future__ import annotations

import json
import sys
import traceback


def main(argv: list[str]) -> int:
    request_path, result_path = argv
    with open(request_path) as f:
        jobs = json.load(f)["jobs"]
    from graphtool.errors import GraphtoolError
    from graphtool.freeze.job import run_job

    results = []
    for job in jobs:
        try:
            results.append({"sidecar": run_job(job)})
        except GraphtoolError as exc:
            results.append({"error": str(exc), "exit_code": exc.exit_code,
                            "load_failure": getattr(exc, "load_failure", False)})
        except Exception:
            results.append({"crash": traceback.format_exc()})
        with open(result_path, "w") as f:
            json.dump({"results": results}, f)
        if "crash" in results[-1]:
            break
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
