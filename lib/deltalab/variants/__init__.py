"""The study's variants: each a change to the body of the chunkwise delta rule's for-loop.

``VARIANTS`` maps a short name to a ``Variant``: its table label, the layer it runs in, its rule (a function with
fla's naive ``delta_rule_chunkwise(q, k, v, beta, chunk_size=32) -> (o, S)`` signature) and the changed loop
line as a formula. Every rule except the two baselines lives in ``variants/<short>.py``, whose docstring opens
with that formula and says how it differs from delta_net, or is a setting of such a file's keyword knobs
(``_setting``: a parameter sweep, e.g. topk_error at other ratios, needs no file per point). A user's own ``.py``
file can stand in for a name (``get_variant(path)``); it is checked with ``check.check_rule`` before it is
returned.

A file whose change is to line (f) only, the state carried to the next chunk, says so with a module-level
``STATE_ONLY = True`` (registered files and users' alike; a ``_setting`` inherits its file's). On a sequence that
fits in one chunk such a change has nothing to act on, and a run that is DeltaNet's bit for bit there is said to
be so for that reason (``analysis.inert``); a declared file must give DeltaNet's output on one chunk
(``check.check_state_only``).
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from deltalab.core import delta_rule_chunkwise
from deltalab.variants.check import VariantCheckError, check_rule, check_state_only
from deltalab.variants.loader import load_rule_file, module_name_for

__all__ = ["Variant", "VARIANTS", "get_variant", "variants_table", "label_of", "name_of_label",
           "check_rule", "VariantCheckError", "load_rule_file"]


@dataclass(frozen=True)
class Variant:
    name: str  # short name
    label: str  # row label of the results table
    mixer: str  # "delta_net" (DeltaNet layer with rule=...) or "gated_delta_net" (the GatedDeltaNet layer)
    rule: Callable | None  # delta_rule_chunkwise-compatible function; None for gated_delta_net
    formula: str  # the changed loop line(s) as a formula (first line of the rule's docstring)
    sequential: bool = False  # True if inherently sequential per token (no registered variant is)
    state_only: bool = False  # True if the change is to the state carried between chunks only (``STATE_ONLY``)
    triton: str | None = None  # its Triton twin, a function of ``deltalab.kernels`` (``kernels.KERNELS``) that a run
    # on CUDA uses instead of ``rule`` (``train.fast_rule``); None: PyTorch only


def _label(middle: str) -> str:
    return f"delta_net_4layer_{middle}_in_for_loop"


def _loop(name: str, middle: str, sequential: bool = False, triton: str | None = None) -> Variant:
    """A DeltaNet variant whose rule is ``variants/<name>.py``'s ``delta_rule_chunkwise`` (``triton``: its twin)."""
    module = importlib.import_module(f"deltalab.variants.{name}")
    return Variant(name, _label(middle), "delta_net", module.delta_rule_chunkwise, _first_line(module.__doc__), sequential,
                   _state_only(module, f"deltalab/variants/{name}.py"), triton)


def _setting(name: str, middle: str, parent: str, formula: str, **knobs) -> Variant:
    """A DeltaNet variant whose rule is ``variants/<parent>.py``'s ``delta_rule_chunkwise`` with keyword knobs bound
    (``functools.partial``); ``formula`` states the changed line at those values. A knob that is not one of the
    rule's keyword-only parameters raises here, at import."""
    module = importlib.import_module(f"deltalab.variants.{parent}")
    rule = module.delta_rule_chunkwise
    params = inspect.signature(rule).parameters
    bad = [kn for kn in knobs if kn not in params or params[kn].kind is not inspect.Parameter.KEYWORD_ONLY]
    if bad:
        valid = [p.name for p in params.values() if p.kind is inspect.Parameter.KEYWORD_ONLY]
        raise ValueError(f"variant {name!r}: {parent}.delta_rule_chunkwise has no keyword knob {', '.join(bad)}; "
                         f"its knobs: {', '.join(valid) or 'none'}")
    return Variant(name, _label(middle), "delta_net", functools.partial(rule, **knobs), formula,
                   state_only=_state_only(module, f"deltalab/variants/{parent}.py"))


def _state_only(module, where: str) -> bool:
    """The module's ``STATE_ONLY`` declaration (False when absent); anything but a bool is refused."""
    flag = getattr(module, "STATE_ONLY", False)
    if not isinstance(flag, bool):
        raise ValueError(f"STATE_ONLY in {where} must be True or False (True: the change is to the state carried "
                         f"between chunks only); got {flag!r}")
    return flag


def _first_line(doc: str | None) -> str:
    """First line of a docstring, runs of spaces (column alignment in the file) squeezed to two."""
    doc = (doc or "").strip()
    return re.sub(r" {3,}", "  ", doc.splitlines()[0].strip()) if doc else ""


_DELTA = "O_i = Q_i S + tril(Q_i K_iᵀ) U'_i;  S = S + K_iᵀ U'_i,  U'_i = U_i − W_i S   (fla's naive loop)"
_GATED = "S = exp(γ_C) S + (K_i ⊙ exp(γ_C − γ))ᵀ U'_i with a learned per-token decay (GatedDeltaNet layer)"

VARIANTS: dict[str, Variant] = {
    "delta_net": Variant("delta_net", "delta_net_4layer", "delta_net", delta_rule_chunkwise, _DELTA,
                         triton="delta_rule_chunkwise_triton"),
    "gated_delta_net": Variant("gated_delta_net", "gated_delta_net_4layer", "gated_delta_net", None, _GATED,
                               triton="gated_delta_rule_chunkwise_triton"),
    "adam_state": _loop("adam_state", "adam_state_update"),
    "adaptive_gated_softmax": _loop("adaptive_gated_softmax", "adaptive_gated_softmax_attention"),
    "local_softmax": _loop("local_softmax", "add_local_softmax_self_attention"),
    "cosine_softmax_error_gated": _loop("cosine_softmax_error_gated", "cosine_softmax_attention_error_gated_update"),
    "cosine_softmax": _loop("cosine_softmax", "cosine_softmax_attention"),
    "decay_state": _loop("decay_state", "decay_state_update", triton="decay_state_triton"),
    "error_gated": _loop("error_gated", "error_gated_state_update"),
    "frobenius_renorm": _loop("frobenius_renorm", "frobenius_renorm_state_update"),
    "gelu_error": _loop("gelu_error", "gelu_on_prediction_error", triton="gelu_error_triton"),
    "hybrid_softmax": _loop("hybrid_softmax", "hybrid_softmax_raw_attention"),
    "layernorm_qk": _loop("layernorm_qk", "layernorm_qk_before_attention"),
    "layernorm_state": _loop("layernorm_state", "layernorm_state_update"),
    "momentum_state": _loop("momentum_state", "momentum_state_update"),
    "normalize_keys": _loop("normalize_keys", "normalize_keys"),
    "orthogonal_error": _loop("orthogonal_error", "orthogonal_error_state_update"),
    "rmsprop_state": _loop("rmsprop_state", "rmsprop_state_update"),
    "rope_qk": _loop("rope_qk", "rope_qk"),
    "sigmoid_forget_gate": _loop("sigmoid_forget_gate", "sigmoid_error_forget_gate_state_update"),
    "sigmoid_similarity_gate": _loop("sigmoid_similarity_gate", "sigmoid_similarity_gate"),
    "softmax_attention": _loop("softmax_attention", "softmax_attention"),
    "topk_error": _loop("topk_error", "topk_error_update"),
    "topk_softmax": _loop("topk_softmax", "topk_softmax_attention"),
    "two_stage_error": _loop("two_stage_error", "two_stage_error_correction_update"),
    "current_key_error": _loop("current_key_error", "current_key_error_update"),
    "l2_norm_error": _loop("l2_norm_error", "l2_normalized_error_update", triton="l2_norm_error_triton"),
    # round 6: the seed documents' next steps (params/rounds/round_6.yaml) and two controls of the softmax family
    "topk_error_r0125": _setting("topk_error_r0125", "topk_error_update_ratio_0125", "topk_error",
                                 "U'_i ← U'_i with only its k = ⌈C/8⌉ largest-norm rows kept (the rest zeroed), for "
                                 "output and write  (topk_error at ratio 0.125)", ratio=0.125),
    "topk_error_r05": _setting("topk_error_r05", "topk_error_update_ratio_05", "topk_error",
                               "U'_i ← U'_i with only its k = ⌈C/2⌉ largest-norm rows kept (the rest zeroed), for "
                               "output and write  (topk_error at ratio 0.5)", ratio=0.5),
    "topk_error_decay": _loop("topk_error_decay", "topk_error_decay_state_update"),
    "topk_error_rope": _loop("topk_error_rope", "topk_error_update_rope_qk"),
    "two_stage_error_full": _setting("two_stage_error_full", "two_stage_error_correction_full_step_update",
                                     "two_stage_error", "Δ₁ = K_iᵀ(U_i − W_i S);  S₁ = S + Δ₁;  Δ₂ = K_iᵀ(U_i − W_i S₁);  "
                                     "S = S₁ + Δ₂  (two_stage_error at γ = 1, the full step)", gamma=1.0),
    "current_key_error_local_softmax": _loop("current_key_error_local_softmax",
                                             "current_key_error_update_add_local_softmax_self_attention"),
    "uniform_average": _loop("uniform_average", "uniform_average_attention"),
    "sharp_softmax": _loop("sharp_softmax", "sharp_softmax_attention"),
}

_BY_LABEL = {v.label: v.name for v in VARIANTS.values()}


def _is_path(s: str) -> bool:
    return s.endswith(".py") or "/" in s or "\\" in s


def _user_label(stem: str) -> str:
    return stem if stem.startswith("delta_net_4layer") else _label(stem)


def get_variant(name_or_path: str | Path) -> Variant:
    """A registered short name, or a path to a user's ``.py`` defining ``delta_rule_chunkwise`` (loaded and
    checked here, so a bad file fails before anything is trained). Unknown names raise ValueError. A user's file
    is loaded and checked once per process: kept by its resolved path and content hash (an edited file is checked
    again)."""
    key = str(name_or_path)
    if key in VARIANTS:
        return VARIANTS[key]
    if isinstance(name_or_path, Path) or _is_path(key):
        path = Path(key)
        try:
            seen = (path.resolve(), hashlib.sha256(path.read_bytes()).hexdigest())
        except OSError:
            seen = None  # not readable: load_rule_file says why
        if seen not in _USER_VARIANTS:
            variant = _user_variant(path)
            if seen is None:
                return variant
            _USER_VARIANTS[seen] = variant
        return _USER_VARIANTS[seen]
    raise ValueError(f"unknown variant {key!r}; valid short names: {', '.join(VARIANTS)} (or a path to a .py file "
                     "defining delta_rule_chunkwise)")


_USER_VARIANTS: dict[tuple[Path, str], Variant] = {}  # (resolved path, sha256 of the content) → its checked Variant


def _user_variant(path: Path) -> Variant:
    """A user's file loaded and checked (``check.check_rule``; ``check_state_only`` when it declares it)."""
    rule = load_rule_file(path)
    check_rule(rule, name=f"variant file {path}")
    state_only = _state_only(sys.modules[module_name_for(path)], f"variant file {path}")  # the file's own flag
    if state_only:
        check_state_only(rule, name=f"variant file {path}")
    formula = _first_line(getattr(rule, "__doc__", None)) or _first_line(getattr(_module_of(rule), "__doc__", None))
    return Variant(path.stem, _user_label(path.stem), "delta_net", rule, formula or f"(user file {path})",
                   state_only=state_only)


def _module_of(fn: Callable):
    return sys.modules.get(getattr(fn, "__module__", ""), None)


def label_of(name_or_path: str | Path) -> str:
    """Table label of a registered short name, or of a user file (from its stem; the file is not loaded)."""
    key = str(name_or_path)
    if key in VARIANTS:
        return VARIANTS[key].label
    if isinstance(name_or_path, Path) or _is_path(key):
        return _user_label(Path(key).stem)
    raise ValueError(f"unknown variant {key!r}; valid short names: {', '.join(VARIANTS)}")


def name_of_label(label: str) -> str:
    """Short name of a registered table label (inverse of ``label_of``)."""
    if label not in _BY_LABEL:
        raise ValueError(f"unknown variant label {label!r}; valid labels: {', '.join(_BY_LABEL)}")
    return _BY_LABEL[label]


def variants_table() -> str:
    """Plain-text table of the registry: short name, label, formula (for ``python -m deltalab variants``)."""
    rows = [("name", "label", "formula")] + [(v.name, v.label, v.formula) for v in VARIANTS.values()]
    w0, w1 = (max(len(r[j]) for r in rows) for j in (0, 1))
    lines = [f"{a:<{w0}}  {b:<{w1}}  {c}" for a, b, c in rows]
    lines.insert(1, f"{'-' * w0}  {'-' * w1}  {'-' * 7}")
    return "\n".join(lines)
