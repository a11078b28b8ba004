"""Collectives and point-to-point messages on tensors, PyTorch's ``torch.distributed``
functions over mpi4py's buffer interface.

Every tensor is reduced or received in its own NumPy storage (a contiguous tensor is
handed to MPI as it is, no copy); a non-contiguous view goes through a contiguous copy
that is written back. ``async_op=True`` starts the non-blocking MPI call and returns a
``Work`` whose ``wait()`` completes it.
"""
from __future__ import annotations

import numpy as np

from .._dispatch import is_tracing
from .._tensor import Tensor
from .process_group import comm_for, mpi
from .reduce_op import ReduceOp, mpi_op
from .work import Work


def _storage(tensor, what: str, write: bool = True) -> np.ndarray:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{what}: expected a tracegrad Tensor, got {type(tensor).__name__}")
    if is_tracing() or not isinstance(tensor._data, np.ndarray):
        raise RuntimeError(f"{what}: cannot run inside a tracegrad.compile trace (a tensor "
                           f"of shape {tuple(tensor.shape)} has no values yet)")
    if tensor.device.type != "cpu":
        raise RuntimeError(f"{what}: the MPI backend works on CPU tensors, got a tensor on "
                           f"{tensor.device}")
    data = tensor._data
    if write and not data.flags.writeable:
        raise RuntimeError(f"{what}: the tensor (shape {tuple(tensor.shape)}) is a read-only "
                           f"view (an expand?); pass a tensor that owns its memory")
    return data


class _Buffer:
    """A tensor's values as an MPI buffer: the storage itself when contiguous, else a
    contiguous copy that ``write_back`` stores into the tensor. Half precision travels as
    float32 for reductions (MPI has no float16 arithmetic)."""

    def __init__(self, tensor, what: str, reduce: bool = False, write: bool = True) -> None:
        self.tensor = tensor
        self.data = _storage(tensor, what, write)
        arr = self.data
        self.copied = not arr.flags.c_contiguous or (reduce and arr.dtype == np.float16)
        if self.copied:
            arr = np.ascontiguousarray(arr, dtype=np.float32 if reduce and
                                       arr.dtype == np.float16 else arr.dtype)
        self.array = arr.reshape(-1)
        self.spec = self.array if reduce else self.array.view(np.uint8)

    def write_back(self, divide_by: int | None = None) -> None:
        if divide_by is not None:
            if self.array.dtype.kind == "f":
                self.array /= divide_by
            else:
                np.floor_divide(self.array, divide_by, out=self.array)
        if self.copied:
            self.data[...] = self.array.reshape(self.data.shape)
        self.tensor._version[0] += 1


def _run(blocking, nonblocking, async_op: bool, finish, what: str):
    if async_op:
        return Work([nonblocking()], finish, what)
    blocking()
    result = finish() if finish is not None else None
    return result


def _check_rank(rank, size: int, what: str, name: str) -> None:
    if not isinstance(rank, (int, np.integer)) or not 0 <= rank < size:
        raise ValueError(f"{what}: {name}={rank!r} is not a rank of this world of size {size}")


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces ``tensor`` across all ranks, in place.

    >>> import tracegrad as torch, tracegrad.distributed as dist
    >>> dist.init_process_group("mpi"); t = torch.tensor([1.0, 2.0])
    >>> dist.all_reduce(t, op=dist.ReduceOp.SUM); t
    tensor([1., 2.])
    >>> dist.destroy_process_group()
    """
    comm = comm_for(group, "all_reduce")
    MPI = mpi()
    mop = mpi_op(op, MPI, "all_reduce")
    buf = _Buffer(tensor, "all_reduce", reduce=True)
    avg = comm.Get_size() if op in (ReduceOp.AVG, "avg", "AVG") else None
    return _run(lambda: comm.Allreduce(MPI.IN_PLACE, buf.spec, mop),
                lambda: comm.Iallreduce(MPI.IN_PLACE, buf.spec, mop), async_op,
                lambda: buf.write_back(avg), "all_reduce")


def reduce(tensor, dst: int = 0, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces ``tensor`` across all ranks into rank ``dst``'s tensor (others unchanged)."""
    comm = comm_for(group, "reduce")
    MPI = mpi()
    _check_rank(dst, comm.Get_size(), "reduce", "dst")
    mop = mpi_op(op, MPI, "reduce")
    root = comm.Get_rank() == dst
    buf = _Buffer(tensor, "reduce", reduce=True, write=root)
    avg = comm.Get_size() if op in (ReduceOp.AVG, "avg", "AVG") else None
    send, recv = (MPI.IN_PLACE, buf.spec) if root else (buf.spec, None)
    finish = (lambda: buf.write_back(avg)) if root else None
    return _run(lambda: comm.Reduce(send, recv, mop, root=dst),
                lambda: comm.Ireduce(send, recv, mop, root=dst), async_op, finish, "reduce")


def broadcast(tensor, src: int = 0, group=None, async_op: bool = False):
    """Copies rank ``src``'s ``tensor`` into ``tensor`` on every other rank."""
    comm = comm_for(group, "broadcast")
    _check_rank(src, comm.Get_size(), "broadcast", "src")
    buf = _Buffer(tensor, "broadcast")
    return _run(lambda: comm.Bcast(buf.spec, root=src),
                lambda: comm.Ibcast(buf.spec, root=src), async_op, buf.write_back,
                "broadcast")


def _gather_target(tensor_list, tensor, size: int, what: str) -> None:
    if len(tensor_list) != size:
        raise ValueError(f"{what}: tensor_list has {len(tensor_list)} tensors but the world "
                         f"has {size} ranks")
    for i, t in enumerate(tensor_list):
        if tuple(t.shape) != tuple(tensor.shape) or t.dtype != tensor.dtype:
            raise ValueError(f"{what}: tensor_list[{i}] is {tuple(t.shape)} {t.dtype} but "
                             f"the input is {tuple(tensor.shape)} {tensor.dtype}")


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    """``tensor_list[r]`` receives rank ``r``'s ``tensor``."""
    comm = comm_for(group, "all_gather")
    size = comm.Get_size()
    _gather_target(tensor_list, tensor, size, "all_gather")
    send = _Buffer(tensor, "all_gather", write=False)
    out = np.empty((size,) + tuple(send.data.shape), dtype=send.data.dtype)
    recv = out.reshape(-1).view(np.uint8)

    def finish():
        for t, part in zip(tensor_list, out):
            _storage(t, "all_gather")[...] = part
            t._version[0] += 1
    return _run(lambda: comm.Allgather(send.spec, recv),
                lambda: comm.Iallgather(send.spec, recv), async_op, finish, "all_gather")


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op: bool = False):
    """``output_tensor`` (``world_size`` times the input along dim 0) receives every
    rank's ``input_tensor``, in rank order."""
    comm = comm_for(group, "all_gather_into_tensor")
    size = comm.Get_size()
    if output_tensor.numel() != size * input_tensor.numel() or \
            output_tensor.dtype != input_tensor.dtype:
        raise ValueError(f"all_gather_into_tensor: output {tuple(output_tensor.shape)} "
                         f"{output_tensor.dtype} must hold {size} x input "
                         f"{tuple(input_tensor.shape)} {input_tensor.dtype}")
    send = _Buffer(input_tensor, "all_gather_into_tensor", write=False)
    out = _Buffer(output_tensor, "all_gather_into_tensor")
    return _run(lambda: comm.Allgather(send.spec, out.spec),
                lambda: comm.Iallgather(send.spec, out.spec), async_op, out.write_back,
                "all_gather_into_tensor")


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """Reduces ``input_list[r]`` across ranks into rank ``r``'s ``output``
    (MPI's ``Reduce_scatter_block``)."""
    comm = comm_for(group, "reduce_scatter")
    size = comm.Get_size()
    _gather_target(input_list, output, size, "reduce_scatter")
    MPI = mpi()
    mop = mpi_op(op, MPI, "reduce_scatter")
    out = _Buffer(output, "reduce_scatter", reduce=True)
    send = np.concatenate([_storage(t, "reduce_scatter", write=False).reshape(-1)
                           for t in input_list]).astype(out.array.dtype, copy=False)
    avg = size if op in (ReduceOp.AVG, "avg", "AVG") else None
    return _run(lambda: comm.Reduce_scatter_block(send, out.spec, mop),
                lambda: comm.Ireduce_scatter_block(send, out.spec, mop), async_op,
                lambda: out.write_back(avg), "reduce_scatter")


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None,
                          async_op: bool = False):
    """Like ``reduce_scatter`` with the inputs concatenated along dim 0 in ``input``."""
    comm = comm_for(group, "reduce_scatter_tensor")
    size = comm.Get_size()
    if input.numel() != size * output.numel() or input.dtype != output.dtype:
        raise ValueError(f"reduce_scatter_tensor: input {tuple(input.shape)} {input.dtype} "
                         f"must hold {size} x output {tuple(output.shape)} {output.dtype}")
    MPI = mpi()
    mop = mpi_op(op, MPI, "reduce_scatter_tensor")
    out = _Buffer(output, "reduce_scatter_tensor", reduce=True)
    send = _Buffer(input, "reduce_scatter_tensor", reduce=True, write=False)
    avg = size if op in (ReduceOp.AVG, "avg", "AVG") else None
    return _run(lambda: comm.Reduce_scatter_block(send.spec, out.spec, mop),
                lambda: comm.Ireduce_scatter_block(send.spec, out.spec, mop), async_op,
                lambda: out.write_back(avg), "reduce_scatter_tensor")


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    """Sends ``tensor`` to rank ``dst`` (blocks until the buffer may be reused)."""
    comm = comm_for(group, "send")
    _check_rank(dst, comm.Get_size(), "send", "dst")
    comm.Send(_Buffer(tensor, "send", write=False).spec, dest=dst, tag=tag)


def recv(tensor, src: int | None = None, group=None, tag: int = 0) -> int:
    """Receives into ``tensor`` from rank ``src`` (any rank when None); returns the
    sender's rank."""
    comm = comm_for(group, "recv")
    MPI = mpi()
    if src is not None:
        _check_rank(src, comm.Get_size(), "recv", "src")
    buf = _Buffer(tensor, "recv")
    status = MPI.Status()
    comm.Recv(buf.spec, source=MPI.ANY_SOURCE if src is None else src, tag=tag,
              status=status)
    _check_count(status, buf, MPI, "recv")
    buf.write_back()
    return status.Get_source()


def _check_count(status, buf, MPI, what: str) -> None:
    got = status.Get_count(MPI.BYTE)
    if got != buf.spec.nbytes:
        raise RuntimeError(f"{what}: received {got} bytes from rank {status.Get_source()} "
                           f"into a tensor of {buf.spec.nbytes} bytes (shape "
                           f"{tuple(buf.data.shape)}, {buf.data.dtype})")


def isend(tensor, dst: int, group=None, tag: int = 0) -> Work:
    """Non-blocking ``send``: the tensor must not change until ``wait()`` returns."""
    comm = comm_for(group, "isend")
    _check_rank(dst, comm.Get_size(), "isend", "dst")
    buf = _Buffer(tensor, "isend", write=False)
    return Work([comm.Isend(buf.spec, dest=dst, tag=tag)], None, "isend")


def irecv(tensor, src: int | None = None, group=None, tag: int = 0) -> Work:
    """Non-blocking ``recv``; ``wait()`` fills the tensor."""
    comm = comm_for(group, "irecv")
    MPI = mpi()
    buf = _Buffer(tensor, "irecv")
    req = comm.Irecv(buf.spec, source=MPI.ANY_SOURCE if src is None else src, tag=tag)
    return Work([req], buf.write_back, "irecv")


def barrier(group=None, async_op: bool = False, device_ids=None):
    """Blocks until every rank has entered the barrier."""
    comm = comm_for(group, "barrier")
    if async_op:
        return Work([comm.Ibarrier()], None, "barrier")
    comm.Barrier()


def all_gather_object(object_list: list, obj, group=None) -> None:
    """``object_list[r]`` receives rank ``r``'s picklable ``obj``."""
    comm = comm_for(group, "all_gather_object")
    if len(object_list) != comm.Get_size():
        raise ValueError(f"all_gather_object: object_list has {len(object_list)} entries but "
                         f"the world has {comm.Get_size()} ranks")
    object_list[:] = comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """Replaces ``object_list``'s entries, on every rank, with rank ``src``'s."""
    comm = comm_for(group, "broadcast_object_list")
    _check_rank(src, comm.Get_size(), "broadcast_object_list", "src")
    objs = comm.bcast(list(object_list) if comm.Get_rank() == src else None, root=src)
    if len(objs) != len(object_list):
        raise ValueError(f"broadcast_object_list: rank {src} sent {len(objs)} objects but "
                         f"this rank's list has {len(object_list)}")
    object_list[:] = objs


__all__ = ["all_reduce", "reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "send", "recv", "isend", "irecv",
           "barrier", "all_gather_object", "broadcast_object_list"]
