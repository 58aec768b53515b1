"""Every OpInfo of PyTorch's op_db on rustorch against CPU (outputs and gradients).

Prints one JSON line: cases (OpInfos), samples (that run on CPU), passed, expected_failures
(benchmarks/conformance/expected_failures.json), failed, crashes, hangs, pass_rate, seconds,
loadavg. Each OpInfo runs in a worker subprocess under a watchdog (benchmarks/conformance/sweep.py).
Full run: python benchmarks/conformance/opinfo_sweep.py   (long: run it niced on a quiet machine)
"""

from sweep import cli

if __name__ == "__main__":
    cli("opinfo", __doc__)
