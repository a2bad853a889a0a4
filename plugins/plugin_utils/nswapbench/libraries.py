"""The report's third-party libraries (numpy, scipy, matplotlib), imported here once.

They run on the controller, in the Python that runs ansible-playbook, which need not have
them: importing the report then still works (ansible-doc, the sanity tests, a benchmark
that only wants runs.jsonl), and ``require()`` names what is missing and how to get it
before anything is rendered, instead of an ImportError from the middle of a chart.
"""

import sys

# What the other files import from here (the libraries, or None when missing).
__all__ = ["MISSING", "REASONS", "MissingLibraries", "numpy", "pyplot", "require", "ttest_ind"]

MISSING = []  # the libraries that did not import
REASONS = []  # their ImportErrors: a library that is installed but broken shows here

try:
    import numpy
except ImportError as err:
    numpy = None
    MISSING.append("numpy")
    REASONS.append(str(err))

try:
    from scipy.stats import ttest_ind
except ImportError as err:
    ttest_ind = None
    MISSING.append("scipy")
    REASONS.append(str(err))

try:
    import matplotlib

    matplotlib.use("Agg")  # no display needed; chosen before pyplot is imported
    from matplotlib import pyplot
except ImportError as err:
    pyplot = None
    MISSING.append("matplotlib")
    REASONS.append(str(err))


class MissingLibraries(RuntimeError):
    """The controller's Python lacks a library the report needs; the message says which."""


def require():
    if MISSING:
        raise MissingLibraries(
            "the benchmark report needs %s in the Python that runs ansible-playbook (%s); "
            "install them there (pip install numpy scipy matplotlib, or apt install "
            "python3-numpy python3-scipy python3-matplotlib for the system Python); "
            "import errors: %s" % (", ".join(MISSING), sys.executable, "; ".join(REASONS))
        )
