"""A per-instance job, run by `shell:` rules as `python instance.py <job> <log> <args...>`.

Not `script:`: Snakemake reads and checks a `script:` rule's source once per job while it
plans, about a quarter of a WLASL2000 dry-run (benchmarks/README.md), and the job itself would
import Snakemake to unpickle its arguments. The job runs in a worker of a warm fork server
(signpose.forkserver says why); this process only hands it over and waits.
"""

import sys

from signpose.forkserver import run_job

if __name__ == "__main__":
    sys.exit(run_job(sys.argv[1:]))
