"""CUDA C sources of kcbatch, shipped inside the wheel as ``kcbatch.kernels``."""
from importlib import resources


def read_source(name: str) -> str:
    """The text of the kernel source file ``name`` (e.g. ``"kuramoto.cu"``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
