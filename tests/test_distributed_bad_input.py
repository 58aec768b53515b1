"""Bad input to rgloo: clear errors, never a hang.

Run as a script, this file is the worker: `python test_distributed_bad_input.py <mode> <out>`.
- local: mistakes every rank makes alike (a tensor on the wrong device, an op gloo cannot run,
  an unsupported collective) raise at once on every rank and leave the group usable; one rank
  alone passing a wrong-device tensor raises there at once, and its peer stops at the timeout
  (or as soon as the wrong rank exits).
- checked: with TORCH_DISTRIBUTED_DEBUG=DETAIL, shapes or dtypes that differ across ranks raise
  a mismatch error on every rank before any data moves, and the group stays usable.
- unchecked: without it, a size mismatch ends as in CPU gloo: gloo aborts the receiving rank
  ("Received data size doesn't match expected size") and its peer fails; nothing hangs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_distributed import describe, spawn  # noqa: E402

TIMEOUT_S = 3.0
DEV = "rustorch"


def _error(fn: Callable[[], object]) -> dict[str, object]:
    start = time.monotonic()
    try:
        fn()
    except Exception as err:  # noqa: BLE001  (the test wants to see which error)
        return {"type": type(err).__name__, "msg": str(err)[:600],
                "seconds": time.monotonic() - start}
    return {"type": None, "msg": "no error", "seconds": time.monotonic() - start}


def _usable(rank: int) -> bool:
    import torch.distributed as dist

    x = torch.full((4,), float(rank + 1), device=DEV)
    dist.all_reduce(x)
    return x.cpu().tolist() == [3.0] * 4


def _local(rank: int) -> dict[str, object]:
    import torch.distributed as dist

    out: dict[str, object] = {}
    meta = torch.empty(3, device="meta")
    outs = [torch.empty(3, device=DEV), meta]
    out["wrong_device"] = _error(lambda: dist.all_gather(outs, torch.ones(3, device=DEV)))
    out["band_on_float"] = _error(
        lambda: dist.all_reduce(torch.ones(3, device=DEV), op=dist.ReduceOp.BAND))
    out["avg_on_bool"] = _error(lambda: dist.all_reduce(
        torch.ones(3, dtype=torch.bool, device=DEV), op=dist.ReduceOp.AVG))
    out["unsupported_collective"] = _error(lambda: dist.group.WORLD._get_backend(
        torch.device(DEV)).allreduce_sparse([torch.ones(3, device=DEV)]))
    out["usable_after"] = _usable(rank)
    # One rank alone is wrong: it raises at once; its peer waits for it until the timeout.
    mine = [torch.empty(3, device=DEV), meta if rank == 1 else torch.empty(3, device=DEV)]
    out["alone"] = _error(lambda: dist.all_gather(mine, torch.ones(3, device=DEV)))
    return out


def _checked(rank: int) -> dict[str, object]:
    import torch.distributed as dist

    out: dict[str, object] = {}
    out["shape"] = _error(lambda: dist.all_reduce(torch.ones(5 + rank, device=DEV)))
    out["dtype"] = _error(lambda: dist.all_reduce(
        torch.ones(5, device=DEV, dtype=torch.float32 if rank == 0 else torch.int32)))
    out["usable_after"] = _usable(rank)
    return out


def _unchecked(rank: int, out_dir: str) -> dict[str, object]:
    import torch.distributed as dist

    assert _usable(rank)
    Path(out_dir, f"unchecked{rank}.started").write_text("")
    return {"shape": _error(lambda: dist.all_reduce(torch.ones(1000 * (rank + 1), device=DEV)))}


def worker(mode: str, out_dir: str) -> None:
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    dist.init_process_group("cpu:gloo,rustorch:rgloo", timeout=timedelta(seconds=TIMEOUT_S))
    if mode == "local":
        result = _local(rank)
    elif mode == "checked":
        result = _checked(rank)
    else:
        result = _unchecked(rank, out_dir)
    Path(out_dir, f"{mode}{rank}.json").write_text(json.dumps(result))
    os._exit(0)  # skip the teardown of a group that may be broken


def _run(tmp: Path, mode: str, **env: str) -> tuple[list, list[dict[str, object] | None]]:
    results = spawn([__file__, mode, str(tmp)], tmp, timeout=90, **env)
    files = [tmp / f"{mode}{r}.json" for r in range(2)]
    return results, [json.loads(f.read_text()) if f.exists() else None for f in files]


def test_local_mistakes_raise_at_once_and_keep_the_group(tmp_path: Path) -> None:
    results, got = _run(tmp_path, "local")
    assert all(g is not None for g in got), describe(results)
    for rank, v in enumerate(got):
        assert v["wrong_device"]["type"] == "ValueError", v
        assert "rgloo handles rustorch and cpu tensors, got a tensor on meta" in \
            v["wrong_device"]["msg"], v
        assert "Cannot use ReduceOp.BAND with non-integral dtype" in v["band_on_float"]["msg"], v
        assert v["avg_on_bool"]["type"] == "ValueError" and "AVG" in v["avg_on_bool"]["msg"], v
        assert "Backend rgloo does not support allreduce sparse" in \
            v["unsupported_collective"]["msg"], v
        for key in ("wrong_device", "band_on_float", "avg_on_bool", "unsupported_collective"):
            assert v[key]["seconds"] < 1.0, (rank, key, v[key])
        assert v["usable_after"] is True, v
    alone, peer = got[1]["alone"], got[0]["alone"]
    assert alone["type"] == "ValueError" and alone["seconds"] < 1.0, alone
    assert peer["type"] is not None, peer  # the peer did not wait forever, nor "succeed"
    # It stops at the timeout, or at once when the wrong rank has already exited.
    msg = peer["msg"].lower()
    assert any(m in msg for m in ("timed out", "timeout", "connection reset", "closed")), peer
    assert peer["seconds"] < TIMEOUT_S + 10, peer


def test_mismatch_across_ranks_is_reported_with_debug_detail(tmp_path: Path) -> None:
    results, got = _run(tmp_path, "checked", TORCH_DISTRIBUTED_DEBUG="DETAIL")
    assert all(g is not None for g in got), describe(results)
    for rank, v in enumerate(got):
        for key in ("shape", "dtype"):
            assert v[key]["type"] == "RuntimeError", (rank, key, v)
            msg = v[key]["msg"]
            assert "mismatch" in msg.lower() or "CollectiveFingerPrint" in msg, (rank, key, msg)
        assert v["usable_after"] is True, v


def test_mismatch_without_checks_ends_without_hanging(tmp_path: Path) -> None:
    results, got = _run(tmp_path, "unchecked")
    assert all((tmp_path / f"unchecked{r}.started").exists() for r in range(2)), describe(results)
    assert not any(r.timed_out for r in results), describe(results)
    # Whichever rank received too much was aborted by gloo with its message; the other raised.
    stderr = "".join(r.stderr for r in results)
    assert "Received data size doesn't match expected size" in stderr, describe(results)
    for r, v in zip(results, got, strict=True):
        assert r.returncode != 0 or (v is not None and v["shape"]["type"] is not None), \
            describe(results)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
