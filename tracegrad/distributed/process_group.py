"""The process group: MPI's world communicator behind PyTorch's ``torch.distributed`` names.

mpi4py is imported only here and only when a process group starts, so ``import tracegrad``
never needs it. The group uses a duplicate of ``COMM_WORLD``: a user's own mpi4py traffic
can never match one of tracegrad's messages.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import threading
import traceback

_state = {"comm": None, "mpi": None, "pid": None, "excepthooks": None}


def is_available() -> bool:
    """True when mpi4py (the MPI transport) can be imported."""
    return importlib.util.find_spec("mpi4py") is not None


def is_initialized() -> bool:
    """True between ``init_process_group`` and ``destroy_process_group``."""
    return _state["comm"] is not None


def is_mpi_available() -> bool:
    return is_available()


def init_process_group(backend: str | None = "mpi", init_method=None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None,
                       group_name: str = "", pg_options=None, device_id=None) -> None:
    """Joins the job started by ``mpiexec``; rank and size come from MPI (outside
    ``mpiexec``, a world of size 1). An unhandled exception on any rank then aborts the
    whole job, so no rank waits forever in a collective for a dead peer.

    >>> import tracegrad.distributed as dist
    >>> dist.init_process_group(backend="mpi"); dist.get_world_size()
    1
    >>> dist.destroy_process_group()
    """
    if backend is None:
        backend = "mpi"
    if str(backend).lower() != "mpi":
        raise ValueError(f"init_process_group: unknown backend {backend!r}; tracegrad "
                         f"supports backend='mpi' (launch with mpiexec)")
    if is_initialized():
        raise RuntimeError("init_process_group: trying to initialize the default process "
                           "group twice!")
    if not is_available():
        raise RuntimeError("init_process_group: backend 'mpi' needs mpi4py; install it with "
                           "pip install 'tracegrad[distributed]'")
    from mpi4py import MPI
    comm = MPI.COMM_WORLD.Dup()
    for name, value in (("world_size", world_size), ("rank", rank)):
        actual = comm.Get_size() if name == "world_size" else comm.Get_rank()
        if value not in (-1, None) and value != actual:
            comm.Free()
            raise ValueError(f"init_process_group: {name}={value} but mpiexec started this "
                             f"process with {name} {actual}")
    _state.update(comm=comm, mpi=MPI, pid=os.getpid())
    _install_abort_hooks()


def destroy_process_group(group=None) -> None:
    """Leaves the process group (MPI itself finalizes at interpreter exit, since MPI can
    be initialized only once per process)."""
    comm = _state["comm"]
    if comm is None:
        return
    _state["comm"] = None
    _restore_excepthooks()
    comm.Free()


def get_rank(group=None) -> int:
    """This process's rank in the group (0 .. world_size - 1)."""
    return comm_for(group, "get_rank").Get_rank()


def get_world_size(group=None) -> int:
    """The number of processes in the group."""
    return comm_for(group, "get_world_size").Get_size()


def get_backend(group=None) -> str:
    comm_for(group, "get_backend")
    return "mpi"


def comm_for(group, what: str):
    """The MPI communicator behind ``group`` (only the default group exists)."""
    comm = _state["comm"]
    if comm is None:
        raise RuntimeError(f"{what}: Default process group has not been initialized, please "
                           f"make sure to call init_process_group.")
    if group is not None and group is not GroupMember.WORLD:
        raise ValueError(f"{what}: only the default group (group=None) is supported, got "
                         f"{group!r}")
    return comm


def mpi():
    return _state["mpi"]


class GroupMember:
    """``dist.group.WORLD``: the default group's handle."""
    WORLD = object()


group = GroupMember


def abort_job(exc_info=None, errorcode: int = 1) -> None:
    """Prints this rank's traceback once and aborts every rank of the job."""
    comm = _state["comm"]
    if exc_info is not None:
        rank = comm.Get_rank() if comm is not None else "?"
        text = "".join(traceback.format_exception(*exc_info))
        sys.stderr.write(f"tracegrad.distributed: unhandled exception on rank {rank}; "
                         f"aborting the job\n{text}")
        sys.stderr.flush()
    sys.stdout.flush()
    mpi_mod = _state["mpi"]
    if mpi_mod is not None:
        mpi_mod.COMM_WORLD.Abort(errorcode)
    os._exit(errorcode)


def _install_abort_hooks() -> None:
    # As ``python -m mpi4py`` does: an unhandled exception aborts the communicator, so
    # the peers blocked in a collective with this rank end too instead of hanging.
    if _state["excepthooks"] is not None:
        return
    old_sys, old_thread = sys.excepthook, threading.excepthook

    def sys_hook(exc_type, exc, tb):
        # A forked child (a DataLoader worker) never aborts its parent's job.
        if os.getpid() != _state["pid"] or _state["comm"] is None:
            return old_sys(exc_type, exc, tb)
        abort_job((exc_type, exc, tb))

    def thread_hook(args):
        if os.getpid() != _state["pid"] or _state["comm"] is None or \
                args.exc_type is SystemExit:
            return old_thread(args)
        abort_job((args.exc_type, args.exc_value, args.exc_traceback))

    sys.excepthook, threading.excepthook = sys_hook, thread_hook
    _state["excepthooks"] = (old_sys, old_thread, sys_hook, thread_hook)


def _restore_excepthooks() -> None:
    hooks = _state["excepthooks"]
    if hooks is None:
        return
    old_sys, old_thread, sys_hook, thread_hook = hooks
    if sys.excepthook is sys_hook:
        sys.excepthook = old_sys
    if threading.excepthook is thread_hook:
        threading.excepthook = old_thread
    _state["excepthooks"] = None
