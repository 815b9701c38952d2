"""A pipeline command for the fault tests: kills the Ray worker that runs it (as the OOM killer would).

    python killer_pipeline.py ATTEMPTS_DIR SPEAKER -- <tiny_pipeline.py arguments>

Each run appends a line to ATTEMPTS_DIR/SPEAKER.txt; while that file holds at most $KILLS_<SPEAKER> lines
it SIGKILLs its grandparent (launch.py's parent: the worker process that runs the case) and exits, else it
runs tiny_pipeline.py with the arguments after ``--``.
"""

import os
import runpy
import signal
import sys
from pathlib import Path

attempts, speaker, args = Path(sys.argv[1]), sys.argv[2], sys.argv[4:]
log = attempts / f"{speaker}.txt"
with open(log, "a") as fh:
    fh.write(f"run {os.getpid()}\n")
if len(log.read_text().splitlines()) <= int(os.environ.get(f"KILLS_{speaker}", "0")):
    launcher = os.getppid()
    worker = int(Path(f"/proc/{launcher}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(worker, signal.SIGKILL)
    sys.exit(1)
sys.argv = [str(Path(__file__).with_name("tiny_pipeline.py")), *args]
runpy.run_path(sys.argv[0], run_name="__main__")
