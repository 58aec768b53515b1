"""The rustorch PrivateUse1 device."""


def _autoload() -> None:
    """Entry point of the `torch.backends` group, called at the end of `import torch`."""
