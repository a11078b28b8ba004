"""``DataParallel``: PyTorch's single-process multi-GPU wrapper, kept because old scripts
wrap their model in it. tracegrad drives one device, so the wrapper calls the module on
the whole batch (what PyTorch does when it finds no GPU); state_dict keys keep the
``module.`` prefix, so checkpoints move both ways."""
from __future__ import annotations

from ..modules.module import Module


class DataParallel(Module):
    """Runs ``module`` on the whole input (one device: nothing to scatter or gather).

    >>> import tracegrad as torch
    >>> net = torch.nn.DataParallel(torch.nn.Linear(3, 2))
    >>> net(torch.ones(4, 3)).shape, list(net.state_dict())
    (tracegrad.Size([4, 2]), ['module.weight', 'module.bias'])
    """

    def __init__(self, module: Module, device_ids=None, output_device=None,
                 dim: int = 0) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel: expected an nn.Module, got "
                            f"{type(module).__name__}")
        self.module = module
        # NOTE: PyTorch leaves device_ids empty (and keeps no dim/output_device) when it
        # sees no CUDA device, which is the single-device behaviour given here
        self.device_ids: list = []

    def forward(self, *inputs, **kwargs):
        return self.module(*inputs, **kwargs)
