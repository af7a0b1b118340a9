"""Layers and the MAD backbones: causality, bf16 autocast, and a forward at each MAD task's shapes."""
import pytest
import torch

from deltalab.layers import DeltaNet, GatedDeltaNet
from deltalab.model import AutoEncoder, LanguageModel, build_model, swiglu_hidden

MIXERS = {"delta_net": DeltaNet, "gated_delta_net": GatedDeltaNet}

# (vocab_size, input length, backbone) of each MAD task's baseline setting (mad-benchmark.md §1-2)
TASK_SHAPES = {
    "in-context-recall": (16, 127, "lm"),
    "fuzzy-in-context-recall": (16, 128, "lm"),
    "noisy-in-context-recall": (32, 127, "lm"),
    "selective-copying": (16, 256, "lm"),
    "compression": (16, 32, "autoencoder"),
    "memorization": (256, 32, "lm"),
}


@pytest.mark.parametrize("mixer", MIXERS)
def test_layer_is_causal(mixer):
    torch.manual_seed(0)
    layer = MIXERS[mixer]().double()
    x = torch.randn(2, 80, 128, dtype=torch.float64)
    for t in (10, 31, 32, 50):  # inside the first chunk, at and across a chunk boundary
        x2 = x.clone()
        x2[:, t + 1 :] = torch.randn_like(x2[:, t + 1 :])
        y, y2 = layer(x), layer(x2)
        assert torch.allclose(y[:, : t + 1], y2[:, : t + 1], atol=1e-10), f"output up to {t} changed"
        assert not torch.allclose(y[:, t + 1 :], y2[:, t + 1 :]), "the perturbation should change later outputs"


@pytest.mark.parametrize("mixer", MIXERS)
def test_layer_bf16_autocast_finite(mixer):
    torch.manual_seed(0)
    layer = MIXERS[mixer]()
    x = torch.randn(2, 100, 128, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().square().mean().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


@pytest.mark.parametrize("mixer", MIXERS)
@pytest.mark.parametrize("task", TASK_SHAPES)
def test_model_forward_at_task_shapes(task, mixer):
    vocab, length, backbone = TASK_SHAPES[task]
    model = build_model(backbone, vocab, MIXERS[mixer])
    x = torch.randint(0, vocab, (2, length))
    logits = model(x)
    assert logits.shape == (2, length, vocab)
    assert torch.isfinite(logits).all()


def test_language_model_is_causal_and_padding_invisible():
    torch.manual_seed(0)
    model = LanguageModel(16, DeltaNet).double()
    x = torch.randint(0, 16, (2, 45))
    full = model(x)
    assert torch.allclose(model(x[:, :20]), full[:, :20], atol=1e-10)  # a prefix gives the same logits


def test_autoencoder_reads_the_last_real_position():
    torch.manual_seed(0)
    model = AutoEncoder(16, DeltaNet).double()
    x = torch.randint(0, 16, (2, 40))  # 40 is padded to 64 inside; the code must come from position 39
    y = model(x)
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 16
    assert not torch.allclose(model(x2), y), "changing the last token must change the code"


def test_mad_dimensions():
    assert swiglu_hidden(128) == 352
    model = LanguageModel(16, DeltaNet)
    kinds = [type(layer).__name__ for layer in model.backbone.layers]
    assert kinds == ["DeltaNet", "SwiGLU", "DeltaNet", "SwiGLU"]
    with pytest.raises(ValueError, match="valid: 'lm', 'autoencoder'"):
        build_model("transformer", 16, DeltaNet)
