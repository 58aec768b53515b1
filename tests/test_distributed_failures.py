"""rgloo set-up and failure behaviour: init without a backend, a rank that dies, a rank that hangs.

Run as a script, this file is the worker: `python test_distributed_failures.py <mode> <out>`.
The survivors must stop with an error inside the configured timeout, never hang.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_distributed import describe, spawn  # noqa: E402

TIMEOUT_S = 3.0  # the process group's timeout in the hung-peer case


def _default(rank: int) -> dict[str, object]:
    import torch.distributed as dist

    if dist.Backend.default_device_backend_map.get("rustorch") != "rgloo":
        return {"hook": False}  # `import torch` did not register rgloo (see the test)
    dist.init_process_group(timeout=timedelta(seconds=30))  # no backend named
    d = torch.full((4,), float(rank + 1), device="rustorch")
    c = torch.full((4,), float(rank + 1))
    dist.all_reduce(d)
    dist.all_reduce(c)  # CPU tensors too, through the same group
    dist.barrier()
    out = {
        "rustorch": d.cpu().tolist(),
        "cpu": c.tolist(),
        "backends": {t.type: dist.group.WORLD._get_backend(t).name() for t in
                     dist.group.WORLD._device_types},
    }
    dist.destroy_process_group()
    return out


def _peer_fails(rank: int, mode: str) -> dict[str, object]:
    import torch.distributed as dist

    dist.init_process_group("cpu:gloo,rustorch:rgloo", timeout=timedelta(seconds=TIMEOUT_S))
    d = torch.ones(1000, device="rustorch")
    dist.all_reduce(d)  # both ranks are connected and healthy
    if rank == 1:
        if mode == "dead":
            os._exit(17)
        time.sleep(TIMEOUT_S + 6)  # alive, but never joins the next collective
        os._exit(0)
    start = time.monotonic()
    errors = []
    for how in ("sync", "future"):
        try:
            if how == "sync":
                dist.all_reduce(d)
            else:
                dist.all_reduce(d, async_op=True).get_future().wait()
        except Exception as err:  # noqa: BLE001  (the test wants to see which error)
            errors.append(f"{how}: {type(err).__name__}: {err}"[:500])
        else:
            errors.append(f"{how}: no error")
    return {"errors": errors, "seconds": time.monotonic() - start}


def worker(mode: str, out: str) -> None:
    rank = int(os.environ["RANK"])
    result = _default(rank) if mode == "default" else _peer_fails(rank, mode)
    Path(out, f"{mode}{rank}.json").write_text(json.dumps(result))
    os._exit(0)  # skip the teardown of a broken group


def test_init_without_backend_serves_rustorch_and_cpu(tmp_path: Path) -> None:
    results = spawn([__file__, "default", str(tmp_path)], tmp_path, timeout=120)
    got = [tmp_path / f"default{r}.json" for r in range(2)]
    assert all(f.exists() for f in got), describe(results)
    for f in got:
        v = json.loads(f.read_text())
        # `import torch` autoloads rustorch_device, which registers rgloo.
        assert v.get("hook") is not False, v
        assert v["rustorch"] == [3.0] * 4 and v["cpu"] == [3.0] * 4, v
        assert v["backends"] == {"rustorch": "rgloo", "cpu": "rgloo"}, v


@pytest.mark.parametrize("mode", ["dead", "hung"])
def test_survivor_stops_with_an_error(tmp_path: Path, mode: str) -> None:
    results = spawn([__file__, mode, str(tmp_path)], tmp_path, timeout=90)
    assert not results[0].timed_out, "rank 0 hung:\n" + describe(results)
    f = tmp_path / f"{mode}0.json"
    assert f.exists(), describe(results)
    v = json.loads(f.read_text())
    for err in v["errors"]:
        assert "no error" not in err, v
    if mode == "hung":
        assert any("timeout" in e.lower() or "timed out" in e.lower() for e in v["errors"]), v
    assert results[1].returncode == (17 if mode == "dead" else 0), describe(results)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
