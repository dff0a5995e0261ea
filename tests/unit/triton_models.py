"""Importing a model of triton_models/ outside tritonserver, for tests of its pure parts."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2] / "triton_models"


def load_model(name: str) -> types.ModuleType:
    """`triton_models/<name>/1/model.py`, with a stand-in for the Triton-only backend utilities."""
    stub = types.ModuleType("triton_python_backend_utils")
    previous = sys.modules.get(stub.__name__)
    sys.modules[stub.__name__] = stub
    try:
        spec = importlib.util.spec_from_file_location(f"{name}_model_under_test", REPOSITORY / name / "1" / "model.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if previous is None:
            del sys.modules[stub.__name__]
        else:
            sys.modules[stub.__name__] = previous
    return module
