"""FSDP2 (`fully_shard`) and DTensor on rustorch over rgloo, 2 ranks, against DDP.

Each model is trained for STEPS steps twice from the same initial parameters and the same per-rank
batches: once with DDP, once with fully_shard on every layer and the root; the gathered FSDP
parameters must match DDP's within 1e-5. Run as a script, this file is the worker.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_distributed import REPO, collect_verdicts, run_checks  # noqa: E402

WORLD = 2
STEPS = 10
TOL = 1e-5
DEV = "rustorch"
Check = Callable[[int], None]
CHECKS: dict[str, Check] = {}


def check(fn: Check) -> Check:
    CHECKS[fn.__name__] = fn
    return fn


class TinyTransformer(nn.Module):
    """Token embedding, two pre-norm encoder layers, a vocabulary head (no dropout)."""

    def __init__(self, vocab: int = 50, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, 4, 64, dropout=0.0, batch_first=True, norm_first=True)
            for _ in range(2)
        )
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def _mnist_net() -> nn.Module:
    sys.path.insert(0, str(REPO / "examples"))
    from ddp_mnist import Net

    return Net(dropout=False)


def _train_both(rank: int, model: nn.Module, shard_units: list[nn.Module],
                batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                optimizer: Callable[..., torch.optim.Optimizer]) -> None:
    """DDP and FSDP2 copies of `model`, STEPS optimizer steps each; parameters must agree."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = model.to(DEV)
    ddp_model = DDP(copy.deepcopy(model))
    mesh = init_device_mesh(DEV, (WORLD,))
    fsdp_model = model
    for unit in shard_units:
        fully_shard(unit, mesh=mesh)
    fully_shard(fsdp_model, mesh=mesh)
    assert all(isinstance(p, DTensor) for p in fsdp_model.parameters()), "fully_shard left plain params"
    opts = [optimizer(m.parameters()) for m in (ddp_model, fsdp_model)]
    for step in range(STEPS):
        x, y = batch(1000 * rank + step)  # each rank its own batch, as with a DistributedSampler
        for m, opt in zip((ddp_model, fsdp_model), opts, strict=True):
            opt.zero_grad()
            loss_fn(m(x), y).backward()
            opt.step()
    worst = 0.0
    for (name, p_ddp), p_fsdp in zip(ddp_model.module.named_parameters(), fsdp_model.parameters(),
                                      strict=True):
        full = p_fsdp.full_tensor()
        assert full.device.type == DEV, f"{name}: gathered on {full.device}"
        diff = (full.detach().cpu() - p_ddp.detach().cpu()).abs().max().item()
        worst = max(worst, diff)
        assert diff <= TOL, f"{name}: FSDP2 differs from DDP by {diff} after {STEPS} steps"
    print(f"rank {rank}: worst |FSDP2 - DDP| = {worst:.3g}", flush=True)


@check
def fsdp_mnist_matches_ddp(rank: int) -> None:
    torch.manual_seed(0)
    net = _mnist_net()
    start = [p.detach().clone() for p in net.parameters()]

    def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(8, 1, 28, 28, generator=g)
        return x.to(DEV), torch.randint(0, 10, (8,), generator=g).to(DEV)

    units = [net.conv1, net.conv2, net.fc1, net.fc2]
    # SGD: an update proportional to the gradient, so a wrong gradient scale (SUM for AVG) shows.
    _train_both(rank, net, units, batch, F.nll_loss,
                lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9))
    assert any(not torch.equal(p.full_tensor().cpu(), s) for p, s in zip(net.parameters(), start,
                                                                         strict=True))


@check
def fsdp_transformer_matches_ddp(rank: int) -> None:
    torch.manual_seed(0)
    model = TinyTransformer()

    def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(seed)
        tokens = torch.randint(0, 50, (4, 12), generator=g)
        return tokens.to(DEV), torch.roll(tokens, -1, dims=1).to(DEV)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))

    _train_both(rank, model, list(model.layers), batch, loss,
                lambda ps: torch.optim.AdamW(ps, lr=1e-3))


@check
def dtensor_basics(rank: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor

    mesh = init_device_mesh(DEV, (WORLD,))
    g = torch.Generator().manual_seed(7)
    full = torch.randn(6, 4, generator=g)
    w = torch.randn(4, 3, generator=g)
    dt = distribute_tensor(full.to(DEV), mesh, [Shard(0)])
    local = dt.to_local()
    assert local.device.type == DEV
    assert torch.equal(local.cpu(), full.chunk(WORLD)[rank]), "Shard(0) holds the wrong rows"
    assert torch.equal(dt.full_tensor().cpu(), full)
    rep = dt.redistribute(mesh, [Replicate()])
    assert torch.equal(rep.to_local().cpu(), full)
    # Sharded rows times a replicated matrix: rows stay sharded, values as on one process.
    dw = distribute_tensor(w.to(DEV), mesh, [Replicate()])
    prod = dt @ dw
    assert isinstance(prod, DTensor) and prod.placements == (Shard(0),), prod.placements
    torch.testing.assert_close(prod.full_tensor().cpu(), full @ w, rtol=1e-6, atol=1e-6)
    # A reduction over the sharded dimension is a partial sum finished by an all_reduce.
    total = dt.sum(dim=0).full_tensor().cpu()
    torch.testing.assert_close(total, full.sum(dim=0), rtol=1e-6, atol=1e-6)
    # from_local: each rank's piece becomes one tensor.
    piece = torch.full((2, 3), float(rank), device=DEV)
    joined = DTensor.from_local(piece, mesh, [Shard(1)]).full_tensor().cpu()
    assert torch.equal(joined, torch.cat([torch.full((2, 3), float(r)) for r in range(WORLD)], 1))


def worker(out_dir: str) -> None:
    run_checks(CHECKS, out_dir, timeout_s=60)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, dict[str, object]]]:
    return collect_verdicts(str(Path(__file__)), tmp_path_factory.mktemp("fsdp"))


@pytest.mark.parametrize("name", list(CHECKS))
def test_fsdp2_and_dtensor(verdicts: list[dict], name: str) -> None:
    for rank, v in enumerate(verdicts):
        assert v[name]["ok"], f"rank {rank}:\n{v[name].get('error')}"


def test_streams_and_events_of_the_device_module() -> None:
    """What FSDP2 asks of torch.rustorch: streams to switch between and events to wait on."""
    import rustorch_device  # noqa: F401  (installs torch.rustorch)

    mod = torch.rustorch
    default = mod.current_stream()
    assert default == mod.default_stream() and default.device == torch.device(DEV, 0)
    side = mod.Stream(priority=-1)
    assert isinstance(side, mod.Stream) and isinstance(side, torch.Stream)
    with mod.stream(side) as entered:
        # The device has one stream (kernels run synchronously), so `side` equals the default.
        assert entered is side and mod.current_stream() == side
        x = torch.ones(4, device=DEV) * 2  # runs at once: the device is synchronous
        event = mod.Event()
        event.record()
        assert isinstance(event, mod.Event) and event.query()
    assert mod.current_stream() == default
    default.wait_event(event)
    default.wait_stream(side)
    assert torch.equal(x.cpu(), torch.full((4,), 2.0))
    with mod.stream(None):  # torch.cuda.stream(None) is a no-op too
        assert mod.current_stream() == default


if __name__ == "__main__":
    worker(sys.argv[1])
