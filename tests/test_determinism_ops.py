"""The training-path kernels give bit-identical results at 1 and 2 threads (fixed reduction
order, counter-based dropout)."""

import pytest
import torch
import torch.nn.functional as F

import rustorch_device  # noqa: F401

DEVICE = "rustorch"


def _workload() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    out: dict[str, torch.Tensor] = {}

    x = torch.randn(256, 1000, generator=gen).to(DEVICE).requires_grad_()
    target = torch.randint(0, 1000, (256,), generator=gen).to(DEVICE)
    loss = F.cross_entropy(x, target)
    loss.backward()
    out["ce_loss"], out["ce_grad"] = loss, x.grad
    out["softmax_dim0"] = torch.softmax(x.detach(), 0)

    big = torch.randn(3_000_001, generator=gen).to(DEVICE)
    out["sum_all"], out["mean_all"] = big.sum(), big.mean()
    m = torch.randn(4000, 300, generator=gen).to(DEVICE)
    out["sum_dim0"], out["sum_dim1"] = m.sum(0), m.sum(1)
    out["sum_t"] = m.t().sum(0)
    out["nll_sum"] = F.nll_loss(F.log_softmax(m, 1), torch.randint(0, 300, (4000,), generator=gen)
                                .to(DEVICE), reduction="sum")

    a = torch.randn(64, 32, 26, 26, generator=gen).to(DEVICE).requires_grad_()
    y = F.max_pool2d(F.relu(a), 3, 2)
    y.backward(torch.randn(y.shape, generator=gen).to(DEVICE))
    out["pool"], out["pool_grad"] = y, a.grad

    # Depthwise conv (its own direct kernels), strided and padded: output and all gradients.
    d = torch.randn(4, 16, 23, 23, generator=gen).to(DEVICE).requires_grad_()
    dw = torch.randn(16, 1, 3, 3, generator=gen).to(DEVICE).requires_grad_()
    db = torch.randn(16, generator=gen).to(DEVICE).requires_grad_()
    y = F.conv2d(d, dw, db, stride=(2, 1), padding=1, groups=16)
    y.backward(torch.randn(y.shape, generator=gen).to(DEVICE))
    out["depthwise"], out["depthwise_gx"] = y, d.grad
    out["depthwise_gw"], out["depthwise_gb"] = dw.grad, db.grad

    # group_norm (native): output and all gradients.
    gx = torch.randn(6, 32, 17, 17, generator=gen).to(DEVICE).requires_grad_()
    gw = torch.randn(32, generator=gen).to(DEVICE).requires_grad_()
    gb = torch.randn(32, generator=gen).to(DEVICE).requires_grad_()
    y = F.group_norm(gx, 8, gw, gb)
    y.backward(torch.randn(y.shape, generator=gen).to(DEVICE))
    out["group_norm"], out["group_norm_gx"] = y, gx.grad
    out["group_norm_gw"], out["group_norm_gb"] = gw.grad, gb.grad

    torch.manual_seed(5)
    out["dropout"] = F.dropout(torch.ones(64, 9216, device=DEVICE), 0.25, training=True)

    params = [torch.randn(s, generator=gen).to(DEVICE).requires_grad_() for s in
              [(128, 9216), (128,), (10, 128)]]
    opt = torch.optim.Adadelta(params, lr=1.0)
    for _ in range(2):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(DEVICE)
        opt.step()
    for i, p in enumerate(params):
        out[f"adadelta_{i}"] = p
    return {k: v.detach().cpu() for k, v in out.items()}


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_bit_identical_at_one_and_two_threads(restore_threads) -> None:
    torch.set_num_threads(1)
    one = _workload()
    torch.set_num_threads(2)
    two = _workload()
    for name, value in one.items():
        assert torch.equal(value, two[name]), name
