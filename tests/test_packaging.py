"""pyproject.toml lists every package folder, mapped to its installed name."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PREFIX = {"tracegrad": "tracegrad", "codegen": "tracegrad.codegen", "runtime": "tracegrad.runtime"}


def test_every_package_folder_is_listed():
    text = (ROOT / "pyproject.toml").read_text()
    for top, installed in PREFIX.items():
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            name = ".".join((installed,) + rel)
            assert f'"{name}"' in text, f"{name} is missing from [tool.setuptools] packages"
