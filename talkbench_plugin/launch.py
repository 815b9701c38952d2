"""Run a command and write its resource usage as JSON: ``python -I -S launch.py STATS -- ARGV...``.

generate.py starts commands through this small process so that their peak memory is their own: on
Linux a child's ``ru_maxrss`` includes the memory of the process it was forked from (the high-water
mark of the address space that ``exec`` replaces), which for a pytest worker is hundreds of MiB.
Stdlib only, run by path: it imports nothing of talkbench.
"""

import json
import os
import subprocess
import sys


def main() -> int:
    stats, argv = sys.argv[1], sys.argv[3:]
    try:
        process = subprocess.Popen(argv)
    except OSError as exc:
        result = {"error": exc.strerror or str(exc), "filename": exc.filename}
    else:
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        result = {"status": process.returncode, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "max_rss_kib": usage.ru_maxrss // 1024 if sys.platform == "darwin" else usage.ru_maxrss}
    with open(stats, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
