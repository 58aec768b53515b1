"""The models the config registry can build: the MNIST CNN, an MLP, resnet18, a small
transformer. Each is a plain nn.Module; none depends on the device."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class MnistCNN(nn.Module):
    """The pytorch/examples MNIST CNN: two 3x3 convs, max-pool, two linear layers, dropout.
    Returns log-probabilities (train it with the "nll" loss)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = torch.flatten(self.dropout1(F.max_pool2d(x, 2)), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


class MLP(nn.Module):
    """Flatten, then `hidden` ReLU layers, then a linear head (logits)."""

    def __init__(self, in_features: int = 784, hidden: list[int] | None = None, num_classes: int = 10,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden if hidden is not None else [256, 128]:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def resnet18(num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    """torchvision's resnet18 (random init), its stem widened/narrowed to `in_channels`."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
    return model


class SmallTransformer(nn.Module):
    """A causal transformer language model: token + position embeddings, `layers` pre-norm
    encoder blocks with a causal mask, a linear head; (B, T) tokens -> (B, T, vocab) logits."""

    def __init__(self, vocab: int = 64, d_model: int = 64, heads: int = 4, layers: int = 2,
                 max_len: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        block = nn.TransformerEncoderLayer(d_model, heads, 4 * d_model, dropout, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t = tokens.shape[1]
        pos = torch.arange(t, device=tokens.device)
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device)
        h = self.blocks(self.tok(tokens) + self.pos(pos), mask=mask, is_causal=True)
        return self.head(h)
