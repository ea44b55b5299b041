"""What the side-by-side benchmarks share: running a tool as a fresh process, timed, with its peak memory."""
import os
import subprocess
import sys
import time


def timed(command, env=None):
    """Runs a command to completion; returns (seconds, peak RSS in MiB, from wait4). Dirty pages left by earlier
    steps (generated inputs) are flushed first, so no tool pays for them."""
    os.sync()
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(map(str, command[:3]))} failed: {process.stderr.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024
