"""Conformance sweeps: PyTorch's OpInfo and ModuleInfo databases on rustorch against CPU.

Shared by benchmarks/conformance/opinfo_sweep.py and moduleinfo_sweep.py (full sweeps; they
live in a subfolder because `make bench` runs every script directly under benchmarks/ and a
full sweep takes hours on two cores) and tests/test_conformance.py (a fixed slice). Each case (an OpInfo or a ModuleInfo) runs in a
worker subprocess under a watchdog: a worker that dies counts the case as a crash, one that
stops answering within the timeout counts it as a hang; a fresh worker takes the next case.

A sample counts only when it runs on CPU; it passes when rustorch's outputs (and, where the
op supports autograd in that dtype, the gradients of all inputs) match CPU's. Failures listed in
benchmarks/conformance/expected_failures.json (key "opinfo"/"moduleinfo" -> "case|dtype" or
"case|dtype|index" -> reason) count as expected failures; entries that matched no failure in a sweep are
reported as "stale_expected" (they pass now and should be removed).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
EXPECTED_FILE = HERE / "expected_failures.json"
DEV = "rustorch"
DTYPE_NAMES = ("float32", "float64", "bfloat16", "int64", "bool", "complex64")
# Tolerances per dtype (rtol, atol): float32 sums may be accumulated in another order.
TOLERANCE = {"float32": (1e-4, 1e-5), "complex64": (1e-4, 1e-5), "float64": (1e-7, 1e-7),
             "bfloat16": (1.6e-2, 1e-2)}
# Ops whose outputs are uninitialized memory: compare metadata only.
METADATA_ONLY = ("empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided",
                 "empty_permuted", "resize_", "resize_as_")


def load_expected() -> dict[str, dict[str, str]]:
    if not EXPECTED_FILE.exists():
        return {"opinfo": {}, "moduleinfo": {}}
    data = json.loads(EXPECTED_FILE.read_text())
    return {"opinfo": dict(data.get("opinfo", {})), "moduleinfo": dict(data.get("moduleinfo", {}))}


# ---- worker side (imports torch) --------------------------------------------------------------

def _worker_setup() -> None:
    import warnings

    import torch

    import rustorch_device  # noqa: F401  (before torch.testing._internal: NATIVE_DEVICES)

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)


def _to_device(obj: Any) -> Any:
    import torch
    from torch.utils._pytree import tree_map

    def move(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
            return x
        if (x._base is not None and x._base.dtype == x.dtype and not x.is_conj()
                and not x.is_neg()):
            # A view (e.g. as_strided's partial views, non-contiguous samples): move its base
            # and take the same view, so the op sees the same storage layout as on CPU.
            base = x._base.detach().to(DEV)
            y = base.as_strided(x.size(), x.stride(), x.storage_offset())
            return y.detach().requires_grad_(x.requires_grad)
        return x.detach().to(DEV).requires_grad_(x.requires_grad)

    return tree_map(move, obj)


def _leaves(obj: Any) -> list[Any]:
    from torch.utils._pytree import tree_flatten

    return tree_flatten(obj)[0]


def _compare(dev: Any, cpu: Any, dtype_name: str, metadata_only: bool) -> str | None:
    """None when equal, else the first difference."""
    import torch

    d_leaves, c_leaves = _leaves(dev), _leaves(cpu)
    if len(d_leaves) != len(c_leaves):
        return f"{len(d_leaves)} outputs, CPU {len(c_leaves)}"
    rtol, atol = TOLERANCE.get(dtype_name, (0.0, 0.0))
    for i, (d, c) in enumerate(zip(d_leaves, c_leaves, strict=True)):
        if isinstance(c, torch.Tensor):
            if not isinstance(d, torch.Tensor):
                return f"output {i}: {type(d).__name__}, CPU a tensor"
            if c.layout != torch.strided or d.layout != torch.strided:
                d, c = d.to_dense(), c.to_dense()
            if d.shape != c.shape or d.dtype != c.dtype:
                return f"output {i}: {tuple(d.shape)} {d.dtype}, CPU {tuple(c.shape)} {c.dtype}"
            if c.device.type == "cpu" and d.device.type not in ("cpu", DEV):
                return f"output {i} on {d.device}"
            if metadata_only:
                continue
            tol = TOLERANCE.get(str(c.dtype).removeprefix("torch."), (rtol, atol))
            try:
                torch.testing.assert_close(d.detach().cpu(), c.detach(), rtol=tol[0],
                                           atol=tol[1], equal_nan=True, check_device=False,
                                           check_stride=False)
            except AssertionError as e:
                return f"output {i}: " + " ".join(str(e).split())[:300]
        elif isinstance(c, float) and isinstance(d, float):
            if not (c == d or (c != c and d != d) or abs(c - d) <= atol + rtol * abs(c)):
                return f"output {i}: {d} != {c}"
        elif d != c and not isinstance(c, torch.dtype | torch.device):
            return f"output {i}: {d!r} != {c!r}"
    return None


def _grad_inputs(sample_parts: Any) -> list[Any]:
    import torch

    return [t for t in _leaves(sample_parts)
            if isinstance(t, torch.Tensor) and t.requires_grad and t.layout == torch.strided]


def _grads(outputs: Any, inputs: list[Any], seed: int) -> list[Any] | None:
    import torch

    outs = [o for o in _leaves(outputs) if isinstance(o, torch.Tensor) and o.requires_grad
            and (o.is_floating_point() or o.is_complex())]
    if not outs or not inputs:
        return None
    gen = torch.Generator().manual_seed(seed)
    gos = [torch.randn(o.shape, dtype=o.dtype, generator=gen).to(o.device) for o in outs]
    grads = torch.autograd.grad(outs, inputs, gos, allow_unused=True)
    return [torch.zeros_like(i) if g is None else g for g, i in zip(grads, inputs, strict=True)]


def _run(fn: Any, parts: Any, seed: int) -> Any:
    import torch

    inp, args, kwargs = parts
    torch.manual_seed(seed)
    return fn(inp, *args, **kwargs)


def op_case(key: str, dtype_names: Iterable[str], max_samples: int | None) -> dict[str, Any]:
    """Runs every sample of OpInfo `key` ("name" or "name.variant") in each dtype."""
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    op = next((o for o in op_db if _op_key(o) == key), None)
    if op is None:
        raise ValueError(f"no OpInfo named {key!r}")
    results: dict[str, Any] = {}
    for dname in dtype_names:
        dtype = getattr(torch, dname)
        if dtype not in op.supported_dtypes("cpu"):
            continue
        grad = (op.supports_autograd and dtype in op.supported_backward_dtypes("cpu")
                and (dtype.is_floating_point or dtype.is_complex))
        try:
            torch.manual_seed(0)
            samples = list(op.sample_inputs("cpu", dtype, requires_grad=grad))
        except Exception as e:  # noqa: BLE001  (a sample generator CPU cannot run: not counted)
            results[f"{dname}|gen"] = ["skip", f"sample_inputs: {type(e).__name__}"]
            continue
        if max_samples is not None:
            samples = samples[:max_samples]
        meta_only = op.name in METADATA_ONLY
        for i, s in enumerate(samples):
            results[f"{dname}|{i}"] = _op_sample(op, s, dname, grad, meta_only, seed=i)
    return results


def _op_sample(op: Any, s: Any, dname: str, grad: bool, meta_only: bool, seed: int) -> list[str]:
    cpu_parts = (s.input, s.args, s.kwargs)
    try:
        out_c = _run(op, cpu_parts, seed)
        g_c = _grads(out_c, _grad_inputs(cpu_parts), seed) if grad else None
    except Exception as e:  # noqa: BLE001  (fails on CPU too: not counted)
        return ["skip", f"CPU: {type(e).__name__}"]
    dev_parts = _to_device(cpu_parts)
    return _verdict(lambda: _run(op, dev_parts, seed), lambda: _grad_inputs(dev_parts),
                    out_c, g_c, dname, meta_only, seed)


def _error_text(e: BaseException) -> str:
    return f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"


def _verdict(run_dev: Any, grad_leaves_dev: Any, out_c: Any, g_c: list[Any] | None, dname: str,
             meta_only: bool, seed: int) -> list[str]:
    """Runs the device side of a sample and compares its outputs (and gradients, when CPU's were
    taken) with CPU's: ["pass", ""] or ["fail", reason]."""
    try:
        out_d = run_dev()
    except Exception as e:  # noqa: BLE001  (the sample's result is the error text)
        return ["fail", _error_text(e)]
    diff = _compare(out_d, out_c, dname, meta_only)
    if diff is not None:
        return ["fail", diff]
    if g_c is not None:
        try:
            g_d = _grads(out_d, grad_leaves_dev(), seed)
        except Exception as e:  # noqa: BLE001
            return ["fail", "backward " + _error_text(e)]
        diff = _compare(g_d, g_c, dname, meta_only)
        if diff is not None:
            return ["fail", "grad " + diff]
    return ["pass", ""]


def module_case(key: str, dtype_names: Iterable[str], max_samples: int | None) -> dict[str, Any]:
    """Forward and backward of every ModuleInput of ModuleInfo `key` (train and eval)."""
    import torch
    from torch.testing._internal.common_modules import module_db

    info = next((m for m in module_db if _module_key(m) == key), None)
    if info is None:
        raise ValueError(f"no ModuleInfo named {key!r}")
    results: dict[str, Any] = {}
    for dname in dtype_names:
        dtype = getattr(torch, dname)
        if dtype not in info.dtypes:
            continue
        for training in (True, False):
            try:
                torch.manual_seed(0)
                inputs = info.module_inputs_func(info, device="cpu", dtype=dtype,
                                                 requires_grad=True, training=training)
            except Exception as e:  # noqa: BLE001
                results[f"{dname}|gen"] = ["skip", f"module_inputs: {type(e).__name__}"]
                continue
            if max_samples is not None:
                inputs = inputs[:max_samples]
            for i, mi in enumerate(inputs):
                tag = f"{dname}|{'train' if training else 'eval'}{i}"
                results[tag] = _module_sample(info, mi, dname, training, seed=i)
    return results


def _module_sample(info: Any, mi: Any, dname: str, training: bool, seed: int) -> list[str]:
    import copy

    import torch

    if mi.forward_input is None:
        return ["skip", "no forward input"]
    try:
        torch.manual_seed(seed)
        m_c = info.module_cls(*mi.constructor_input.args, **mi.constructor_input.kwargs)
        m_c = m_c.to(getattr(torch, dname)).train(training)
        fwd = mi.forward_input
        parts_c = (fwd.args, fwd.kwargs)
        if any(isinstance(p, torch.nn.parameter.UninitializedParameter)
               for p in m_c.parameters()):
            # Lazy modules: materialize the parameters on CPU first, so both copies share them.
            with torch.no_grad():
                m_c(*[a.detach() if isinstance(a, torch.Tensor) else a for a in fwd.args],
                    **fwd.kwargs)
        m_d = copy.deepcopy(m_c).to(DEV)

        def call(m: Any, parts: Any) -> Any:
            torch.manual_seed(seed)
            return m(*parts[0], **parts[1])

        out_c = call(m_c, parts_c)
        leaves_c = _grad_inputs(parts_c) + [p for p in m_c.parameters() if p.requires_grad]
        g_c = _grads(out_c, leaves_c, seed)
    except Exception as e:  # noqa: BLE001  (fails on CPU: not counted)
        return ["skip", f"CPU: {type(e).__name__}"]
    parts_d = _to_device(parts_c)
    return _verdict(lambda: call(m_d, parts_d),
                    lambda: _grad_inputs(parts_d) + [p for p in m_d.parameters() if p.requires_grad],
                    out_c, g_c, dname, False, seed)


def _op_key(op: Any) -> str:
    return f"{op.name}.{op.variant_test_name}" if op.variant_test_name else op.name


def _module_key(info: Any) -> str:
    return info.name


def all_keys(kind: str) -> list[str]:
    _worker_setup()
    if kind == "opinfo":
        from torch.testing._internal.common_methods_invocations import op_db

        return [_op_key(o) for o in op_db]
    from torch.testing._internal.common_modules import module_db

    return [_module_key(m) for m in module_db]


def worker_main(kind: str, dtypes: list[str], max_samples: int | None) -> None:
    """Reads case keys on stdin, writes one JSON line per case on stdout."""
    _worker_setup()
    case = op_case if kind == "opinfo" else module_case
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        key = line.strip()
        if not key:
            continue
        try:
            res = case(key, dtypes, max_samples)
            print(json.dumps({"key": key, "samples": res}), flush=True)
        except Exception as e:  # noqa: BLE001  (a broken case is reported, the worker goes on)
            print(json.dumps({"key": key, "error": f"{type(e).__name__}: {e}"[:300]}), flush=True)


# ---- driver side (no torch import) ------------------------------------------------------------

class Worker:
    def __init__(self, kind: str, dtypes: list[str], max_samples: int | None) -> None:
        cmd = [sys.executable, str(Path(__file__)), "--worker", kind, "--dtypes", ",".join(dtypes)]
        if max_samples is not None:
            cmd += ["--max-samples", str(max_samples)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_json(self, timeout: float) -> dict[str, Any] | None:
        """The next JSON line; None if the worker died; raises queue.Empty on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            if line.startswith("{"):
                return json.loads(line)

    def send(self, key: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(key + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def sweep(kind: str, keys: list[str], dtypes: list[str], max_samples: int | None,
          timeout: float, progress: bool = False) -> dict[str, Any]:
    """Runs the cases; returns the summary (and per-sample failures). With `progress`, one
    JSON line per case goes to stderr as it finishes."""
    expected = load_expected()[kind]
    summary: dict[str, Any] = {"kind": kind, "cases": len(keys), "samples": 0, "passed": 0,
                               "expected_failures": 0, "failed": 0, "skipped_on_cpu": 0,
                               "crashes": [], "hangs": [], "errors": [], "failures": {}}
    used_expected: set[str] = set()
    finished: set[str] = set()
    worker: Worker | None = None
    for key in keys:
        if worker is None:
            worker = Worker(kind, dtypes, max_samples)
            if worker.next_json(timeout=300) is None:
                raise RuntimeError("conformance worker failed to start")
        worker.send(key)
        try:
            msg = worker.next_json(timeout)
        except queue.Empty:
            summary["hangs"].append(key)
            worker.kill()
            worker = None
            continue
        if msg is None:
            summary["crashes"].append(key)
            worker.kill()
            worker = None
            continue
        if "error" in msg:
            summary["errors"].append(f"{key}: {msg['error']}")
            continue
        finished.add(key)
        if progress:
            counts: dict[str, int] = {}
            for status, _ in msg["samples"].values():
                counts[status] = counts.get(status, 0) + 1
            print(json.dumps({"case": key, **counts}), file=sys.stderr, flush=True)
        for tag, (status, reason) in msg["samples"].items():
            dname = tag.split("|")[0]
            if status == "skip":
                summary["skipped_on_cpu"] += 1
                continue
            summary["samples"] += 1
            if status == "pass":
                summary["passed"] += 1
            elif (match := next((k for k in (f"{key}|{tag}", f"{key}|{dname}", key)
                                 if k in expected), None)) is not None:
                summary["expected_failures"] += 1
                used_expected.add(match)
            else:
                summary["failed"] += 1
                summary["failures"][f"{key}|{tag}"] = reason
    if worker is not None:
        worker.kill()
    # Entries for cases that ran (in the dtypes swept) but matched no failure: they now pass
    # and should leave expected_failures.json.
    summary["stale_expected"] = sorted(
        k for k in expected
        if k not in used_expected and k.split("|")[0] in finished
        and (len(k.split("|")) < 2 or k.split("|")[1] in dtypes))
    n = summary["samples"]
    summary["pass_rate"] = (summary["passed"] + summary["expected_failures"]) / n if n else 1.0
    summary["strict_pass_rate"] = summary["passed"] / n if n else 1.0
    return summary


def cli(kind: str, description: str) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dtypes", default=",".join(DTYPE_NAMES),
                        help="comma-separated dtypes (default: %(default)s)")
    parser.add_argument("--max-samples", type=int, default=None,
                        help="samples per case and dtype (default: all)")
    parser.add_argument("--only", default="",
                        help="comma-separated case names (default: the whole database)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="seconds a case may take before it counts as a hang")
    parser.add_argument("--progress", action="store_true",
                        help="one JSON line per finished case on stderr")
    parser.add_argument("--failures", action="store_true",
                        help="include each unexpected failure with its reason")
    args = parser.parse_args()
    keys = [k for k in args.only.split(",") if k] or all_keys(kind)
    t0 = time.monotonic()
    res = sweep(kind, keys, args.dtypes.split(","), args.max_samples, args.timeout,
                args.progress)
    res["seconds"] = round(time.monotonic() - t0, 1)
    res["loadavg"] = os.getloadavg()
    if not args.failures:
        res["failures"] = len(res["failures"])
    print(json.dumps(res))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        p = argparse.ArgumentParser()
        p.add_argument("--worker")
        p.add_argument("--dtypes")
        p.add_argument("--max-samples", type=int, default=None)
        a = p.parse_args()
        worker_main(a.worker, a.dtypes.split(","), a.max_samples)
    else:
        sys.exit("run benchmarks/conformance/opinfo_sweep.py or moduleinfo_sweep.py")
