"""The pytorch/examples MNIST training step (Adadelta, StepLR) and its eval loop run entirely on
native rustorch kernels: op_stats() must show zero fallback calls."""

import copy

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


def _train_steps(model: torch.nn.Module, opt: torch.optim.Optimizer, batches, loss_fn) -> list:
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_resnet_and_transformer_steps_make_no_fallback_calls_and_match_cpu() -> None:
    """A ResNet-style block (conv, batch_norm with running stats, residual add, SGD momentum)
    and a TransformerEncoderLayer (layer_norm, attention with masked-row softmax, AdamW)."""
    torch.manual_seed(0)
    resnet = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4),
    )
    layer = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0,
                                             batch_first=True)
    gen = torch.Generator().manual_seed(1)
    img = [(torch.randn(4, 3, 8, 8, generator=gen), torch.randint(0, 4, (4,), generator=gen))
           for _ in range(2)]
    seq = [(torch.randn(2, 5, 16, generator=gen), None) for _ in range(2)]
    results = {}
    for device in ("cpu", DEVICE):
        r, t = copy.deepcopy(resnet).to(device), copy.deepcopy(layer).to(device)
        sgd = torch.optim.SGD(r.parameters(), lr=0.1, momentum=0.9, foreach=True)
        adamw = torch.optim.AdamW(t.parameters(), lr=1e-2, foreach=True)
        rustorch_device.reset_op_stats()
        a = _train_steps(r, sgd, [(x.to(device), y.to(device)) for x, y in img], F.cross_entropy)
        b = _train_steps(t, adamw, [(x.to(device), y) for x, y in seq],
                         lambda out, _: out.square().mean())
        results[device] = (a, b, r[1].running_var.cpu(), r[1].num_batches_tracked.item())
        if device == DEVICE:
            assert _fallbacks() == {}
            stats = rustorch_device.op_stats()
            for op in ("aten::native_batch_norm", "aten::native_batch_norm_backward",
                       "aten::native_layer_norm_backward", "aten::where.self_out"):
                assert stats[op]["native"] > 0, op
    cpu, dev = results["cpu"], results[DEVICE]
    torch.testing.assert_close(dev[0], cpu[0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dev[1], cpu[1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(dev[2], cpu[2])
    assert dev[3] == cpu[3] == 2
