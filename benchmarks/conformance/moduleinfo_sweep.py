"""Every ModuleInfo of PyTorch's module_db on rustorch against CPU (forward, backward: input
and parameter gradients; train and eval).

Prints one JSON line like opinfo_sweep.py. Default dtypes: float32, float64.
"""

import sys

from sweep import cli

if __name__ == "__main__":
    if not any(a.startswith("--dtypes") for a in sys.argv):
        sys.argv += ["--dtypes", "float32,float64"]
    cli("moduleinfo", __doc__)
