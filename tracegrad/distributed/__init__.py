"""Data-parallel training across processes on MPI: PyTorch's ``torch.distributed`` names.

Launch with ``mpiexec -n N python train.py``; ``init_process_group(backend="mpi")`` takes
rank and world size from MPI. mpi4py is imported only then: ``import tracegrad`` and
``import tracegrad.distributed`` work without it.

>>> import tracegrad.distributed as dist
>>> dist.is_available() in (True, False)
True
"""
from .collectives import (all_gather, all_gather_into_tensor, all_gather_object, all_reduce,
                          barrier, broadcast, broadcast_object_list, irecv, isend, recv,
                          reduce, reduce_scatter, reduce_scatter_tensor, send)
from .process_group import (GroupMember, destroy_process_group, get_backend, get_rank,
                            get_world_size, group, init_process_group, is_available,
                            is_initialized, is_mpi_available)
from .reduce_op import ReduceOp
from .work import Work

__all__ = ["is_available", "is_mpi_available", "init_process_group", "is_initialized",
           "destroy_process_group", "get_rank", "get_world_size", "get_backend", "barrier",
           "ReduceOp", "Work", "GroupMember", "group", "all_reduce", "reduce", "broadcast",
           "all_gather", "all_gather_into_tensor", "all_gather_object",
           "broadcast_object_list", "reduce_scatter", "reduce_scatter_tensor", "send",
           "recv", "isend", "irecv"]
