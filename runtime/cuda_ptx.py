"""PTX of rendered CUDA C for inspection (``explain()``, ``tracegrad dump``): ``nvcc --ptx``
where nvcc exists, needing no GPU; a line saying why where it does not."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile


def find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found is None and os.path.exists("/usr/local/cuda/bin/nvcc"):
        found = "/usr/local/cuda/bin/nvcc"
    return found


@functools.lru_cache(maxsize=256)
def ptx_of(source: str, arch: str = "sm_90") -> str:
    """The PTX nvcc makes of ``source`` for ``arch``, or a one-line comment saying why
    there is none (nvcc missing, or its error)."""
    nvcc = find_nvcc()
    if nvcc is None:
        return "// PTX not shown: nvcc not found (install the CUDA toolkit or put nvcc on PATH)"
    with tempfile.TemporaryDirectory() as tmp:
        cu, ptx = os.path.join(tmp, "kernel.cu"), os.path.join(tmp, "kernel.ptx")
        with open(cu, "w") as f:
            f.write(source)
        res = subprocess.run([nvcc, "--ptx", f"-arch={arch}", "-o", ptx, cu],
                             capture_output=True, text=True)
        if res.returncode != 0:
            first = (res.stderr.strip().splitlines() or ["no message"])[0]
            return f"// PTX not shown: nvcc --ptx failed: {first}"
        with open(ptx) as f:
            return f.read()
