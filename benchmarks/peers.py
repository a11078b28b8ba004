"""Optional peers: PyTorch and JAX, used only when importable (never a dependency)."""
from __future__ import annotations

import importlib
import os


def discover(device: str = "cpu") -> dict:
    """name -> module for the peers that import cleanly. ``TG_BENCH_NO_PEERS=1`` disables."""
    found = {}
    if os.environ.get("TG_BENCH_NO_PEERS", "") in ("1", "true", "yes"):
        return found
    try:
        torch = importlib.import_module("torch")
        if getattr(torch, "__name__", "") == "torch" and hasattr(torch, "_C"):
            found["torch"] = torch
    except Exception:  # noqa: BLE001 - a broken install is simply absent
        pass
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cuda" if device == "cuda" else "cpu")
        jax = importlib.import_module("jax")
        importlib.import_module("jax.numpy")
        found["jax"] = jax
    except Exception:  # noqa: BLE001
        pass
    return found


def versions(peers: dict) -> dict:
    return {name: getattr(mod, "__version__", "?") for name, mod in peers.items()}
