"""What ``compiled.explain(...)`` returns: the traced graph, fused groups, loop IR and
generated source of every kernel, as text (``str(report)``) and as objects."""
from __future__ import annotations

from dataclasses import dataclass

from ..codegen.render_cuda import launch_config, render_cuda
from ..codegen.schedule import without_lengths
from ..runtime.cpu_program import llvm_sources
from ..runtime.cuda_ptx import ptx_of


@dataclass
class KernelReport:
    name: str
    ops: list[str]
    source: str
    loop_ir: str
    stage: str          # "forward" or "backward"; in a training step also "update", or
    #                     the phases fused into one kernel ("backward+update")
    backend: str = "llvm"
    # CUDA only: (grid, block) for a device of 1024 threads per block, as CudaProgram
    # launches it (its own .geometry holds the device's actual choice)
    geometry: tuple | None = None

    @property
    def ptx(self) -> str | None:
        """PTX of a CUDA kernel (``nvcc --ptx``, run on first access), or a line saying
        why it is missing; None on the CPU backend."""
        return ptx_of(self.source) if self.backend == "cuda" else None

    def __str__(self) -> str:
        return f"{self.name} [{self.stage}] ops={'+'.join(self.ops)}"


class Report:
    def __init__(self, name: str, signature, entry, backend: str = "llvm",
                 symbolic: tuple[str, ...] = (), eager_reason: str | None = None) -> None:
        self.name = name
        # why a call with this signature runs eagerly (None: it is compiled)
        self.eager_reason = eager_reason
        self.symbolic = symbolic  # cache_info().symbolic lines that apply to this signature
        self.backend = backend
        self.signature = signature
        self.graph = entry.traced
        self.forward = entry.forward_plan
        self.backward = entry.backward_plan
        self.kernels: list[KernelReport] = []
        self.stages = dict(entry.stages)
        self.externs: list[str] = []
        for stage, program in (("forward", self.forward), ("backward", self.backward)):
            if program is None:
                continue
            # each backend renders (and names) kernels from the same typed program
            sources = (llvm_sources(program) if backend != "cuda"
                       else {k.name: render_cuda(without_lengths(k, program.buffers).kernel)
                             for k in program.kernels})
            for k in program.kernels:
                source = sources[k.name]
                label = entry.stages.get(k.name, stage) if stage == "forward" else stage
                geometry = (launch_config(without_lengths(k, program.buffers).kernel,
                                      max_threads=1024) if backend == "cuda"
                            else None)
                self.kernels.append(KernelReport(k.name, list(k.ops), source, k.loop_ir, label,
                                                 backend, geometry))
            self.externs += [f"{stage}: {s.node.op.name}" for s in program.externs]

    def __str__(self) -> str:
        if self.eager_reason is not None:
            return (f"# {self.name} runs eagerly for this signature: it cannot be traced "
                    f"({self.eager_reason})")
        lines = [f"# compiled {self.name}"]
        if self.symbolic:
            lines += ["", "## symbolic sizes", *self.symbolic]
        lines += ["", "## traced graph (forward and backward)", str(self.graph)]
        stages = self.stages
        for stage, program in (("forward", self.forward), ("backward", self.backward)):
            if program is None:
                continue
            lines += ["", f"## {stage}: fused groups",
                      *[f"  kernel {k.name} [{stages.get(k.name, stage)}]: {' + '.join(k.ops)}"
                        for k in program.kernels],
                      *[f"  extern {s.node.op.name}" for s in program.externs],
                      "", f"## {stage} program", str(program)]
        for k in self.kernels:
            lines += ["", f"## source of {k.name} ({k.stage})", k.source]
            if k.geometry is not None:
                (grid, block) = k.geometry
                lines += ["", f"## launch geometry of {k.name}: grid={grid} block={block}",
                          "", f"## PTX of {k.name}", k.ptx or ""]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<Report {self.name}: {len(self.kernels)} kernels, "
                f"{len(self.externs)} extern calls>")
