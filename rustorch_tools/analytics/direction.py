"""Which way is "better" for a metric, guessed from its name.

`best` of a metric is its minimum when lower is better (losses, errors, times, memory,
fallback counts) and its maximum otherwise (accuracy, throughput, native op counts).
"""

from __future__ import annotations

import re

# Matched against the last `/`-separated part of the name, lower-cased.
_LOWER_IS_BETTER = re.compile(
    r"loss|err|nll|mse|mae|rmse|perplexity|ppl|wer|cer|time|latency|duration|seconds"
    r"|(^|_)(ms|us|ns|s|sec)$|mem|alloc|bytes|peak|fallback|regret|cost"
)


def higher_is_better(metric: str) -> bool:
    """False for loss/error/time/memory-like names, True otherwise."""
    leaf = metric.rsplit("/", 1)[-1].lower()
    return _LOWER_IS_BETTER.search(leaf) is None
