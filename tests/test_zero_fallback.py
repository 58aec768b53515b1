"""The pytorch/examples MNIST training step (Adadelta, StepLR) and its eval loop run entirely on
native rustorch kernels: op_stats() must show zero fallback calls."""

import torch
import torch.nn.functional as F
from mnist_net import Net

import rustorch_device

DEVICE = "rustorch"


def _batch(seed: int, n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    data = (torch.rand(n, 1, 28, 28, generator=gen) - 0.1307) / 0.3081
    return data, torch.randint(0, 10, (n,), generator=gen)


def _fallbacks() -> dict[str, dict[str, int]]:
    return {op: c for op, c in rustorch_device.op_stats().items() if c["fallback"]}


def test_mnist_train_and_eval_make_no_fallback_calls() -> None:
    torch.manual_seed(0)
    model = Net().to(DEVICE)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    rustorch_device.reset_op_stats()

    model.train()
    losses = []
    for step in range(2):
        data, target = _batch(step)
        data, target = data.to(DEVICE), target.to(DEVICE)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()

    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        data, target = _batch(99, 1000)
        data, target = data.to(DEVICE), target.to(DEVICE)
        output = model(data)
        test_loss += F.nll_loss(output, target, reduction="sum").item()
        pred = output.argmax(dim=1, keepdim=True)
        correct += pred.eq(target.view_as(pred)).sum().item()

    assert all(torch.isfinite(torch.tensor(losses)))
    assert 0 <= correct <= 1000
    stats = rustorch_device.op_stats()
    for op in ("aten::_log_softmax", "aten::nll_loss_forward", "aten::native_dropout",
               "aten::max_pool2d_with_indices", "aten::_foreach_addcmul_.Scalar"):
        assert stats[op]["native"] > 0, op
    assert _fallbacks() == {}
