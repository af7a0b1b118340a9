"""Load a user's variant file: a .py defining ``delta_rule_chunkwise(q, k, v, beta, chunk_size=32) -> (o, S)``.

Each file is imported under its own module name (stem plus a hash of its absolute path), so two files with the
same function name, or the same stem in two folders, never shadow each other or a registered variant.
"""
from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Callable

__all__ = ["RULE_NAME", "load_rule_file", "module_name_for"]

RULE_NAME = "delta_rule_chunkwise"


def module_name_for(path: Path) -> str:
    path = Path(path).resolve()
    stem = re.sub(r"\W", "_", path.stem)
    return f"deltalab_user_rule_{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"


def load_rule_file(path: str | Path) -> Callable:
    """Import ``path`` and return its ``delta_rule_chunkwise``; ValueError with the reason if that fails."""
    path = Path(path)
    if path.suffix != ".py":
        raise ValueError(f"a variant file must be a .py file defining {RULE_NAME}(q, k, v, beta, chunk_size=32); got {path}")
    if not path.is_file():
        raise ValueError(f"variant file not found: {path}")
    name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # registered before exec, as importlib does (dataclasses and pickle look it up)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ValueError(f"importing variant file {path} failed: {type(e).__name__}: {e}") from e
    fn = getattr(module, RULE_NAME, None)
    if fn is None:
        raise ValueError(f"variant file {path} defines no function {RULE_NAME}(q, k, v, beta, chunk_size=32) -> (o, S)")
    if not callable(fn):
        raise ValueError(f"{RULE_NAME} in {path} is not callable (got {type(fn).__name__})")
    return fn
