"""``DistributedDataParallel``: one model replica per rank, gradients averaged across ranks
during backward (see reducer.py for the buckets)."""
from __future__ import annotations

import contextlib

from ..._dispatch import is_tracing
from ..._tensor import Tensor
from ...distributed import collectives
from ...distributed.process_group import comm_for
from ..modules.module import Module
from .reducer import Reducer


class DistributedDataParallel(Module):
    """Wraps ``module`` so that ``backward()`` leaves every rank with the gradient averaged
    over all ranks (PyTorch's ``torch.nn.parallel.DistributedDataParallel``).

    At construction rank 0's parameters and buffers are copied to every rank. During
    backward each bucket of about ``bucket_cap_mb`` MiB of gradients starts a
    non-blocking all-reduce once its gradients are ready; ``backward()`` returns after all
    have finished.

    >>> import tracegrad as torch, tracegrad.distributed as dist
    >>> from tracegrad.nn.parallel import DistributedDataParallel as DDP
    >>> dist.init_process_group("mpi")
    >>> model = DDP(torch.nn.Linear(3, 1))
    >>> model(torch.ones(2, 3)).sum().backward(); model.module.weight.grad.shape
    tracegrad.Size([1, 3])
    >>> dist.destroy_process_group()
    """

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None,
                 bucket_cap_mb: float | None = None, find_unused_parameters: bool = False,
                 check_reduction: bool = False, gradient_as_bucket_view: bool = False,
                 static_graph: bool = False) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nn.Module, got "
                            f"{type(module).__name__}")
        comm = comm_for(process_group, "DistributedDataParallel")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.require_backward_grad_sync = True
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        if self.bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got "
                             f"{bucket_cap_mb}")
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        _check_same_parameters(named, list(module.named_buffers()), process_group,
                               comm.Get_rank())
        self._params = [p for _, p in named]
        self._sync_from_rank0()
        self.reducer = Reducer(self._params, int(self.bucket_cap_mb * 1024 * 1024),
                               process_group)

    def _sync_from_rank0(self) -> None:
        for p in self.module.parameters():
            collectives.broadcast(p.data, src=0, group=self.process_group)
        self._broadcast_buffers()

    def _broadcast_buffers(self) -> None:
        for b in self.module.buffers():
            collectives.broadcast(b.data, src=0, group=self.process_group)

    def forward(self, *inputs, **kwargs):
        tracing = is_tracing()
        if not tracing:
            self.reducer.check_finished()
            if self.broadcast_buffers and self.training:
                self._broadcast_buffers()
        self.reducer.sync = self.require_backward_grad_sync
        out = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self.require_backward_grad_sync:
            if tracing:
                raise RuntimeError("DistributedDataParallel: find_unused_parameters=True "
                                   "cannot be used inside tracegrad.compile (the unused set "
                                   "is found by walking each iteration's graph)")
            used = _reachable_leaves(out)
            if used:  # forward under no_grad: no backward is coming
                self.reducer.mark_unused([p for p in self._params if id(p) not in used])
        return out

    @contextlib.contextmanager
    def no_sync(self):
        """Inside this context gradients accumulate locally without any all-reduce; the
        first backward after it averages the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old


def _check_same_parameters(named_params, named_buffers, group, rank: int) -> None:
    """Every rank must hold the same parameters and buffers (names, shapes, dtypes);
    otherwise every rank raises the same error naming the first difference."""
    mine = [("parameter", n, tuple(p.shape), str(p.dtype)) for n, p in named_params] + \
        [("buffer", n, tuple(b.shape), str(b.dtype)) for n, b in named_buffers]
    everyone = [None] * comm_for(group, "DistributedDataParallel").Get_size()
    collectives.all_gather_object(everyone, mine, group=group)
    ref = everyone[0]
    for r, theirs in enumerate(everyone[1:], start=1):
        if theirs == ref:
            continue
        for i in range(max(len(ref), len(theirs))):
            a = ref[i] if i < len(ref) else None
            b = theirs[i] if i < len(theirs) else None
            if a != b:
                break
        raise RuntimeError(
            f"DistributedDataParallel: ranks disagree on the model: rank 0 has "
            f"{len(ref)} parameters/buffers and rank {r} has {len(theirs)}; the first "
            f"difference is {_describe(a)} on rank 0 vs {_describe(b)} on rank {r}")


def _describe(entry) -> str:
    if entry is None:
        return "nothing"
    kind, name, shape, dtype = entry
    return f"{kind} {name!r} of shape {shape} and dtype {dtype}"


def _reachable_leaves(out) -> set:
    """ids of the leaf tensors that the autograd graph behind ``out`` reaches."""
    roots = []
    _collect_tensors(out, roots)
    seen, leaves = set(), set()
    stack = [t.grad_fn for t in roots if t.grad_fn is not None]
    for t in roots:
        if t.grad_fn is None and t.requires_grad:
            leaves.add(id(t))
    while stack:
        node = stack.pop()
        if id(node) in seen or node.inputs is None:
            continue
        seen.add(id(node))
        for x in node.inputs:
            if isinstance(x, Tensor):
                if x.grad_fn is not None:
                    stack.append(x.grad_fn)
                elif x.requires_grad:
                    leaves.add(id(x))
    return leaves


def _collect_tensors(obj, found: list) -> None:
    if isinstance(obj, Tensor):
        found.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _collect_tensors(x, found)
    elif isinstance(obj, dict):
        for x in obj.values():
            _collect_tensors(x, found)
