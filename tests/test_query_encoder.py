"""The lean query encoder against the library's forward pass of the real packaged model: the same vectors in
float32, nearly the same in bfloat16, and no encoder for a model whose shape it does not know."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import query_encoder
from indexer.query_encoder import LeanQueryEncoder, native_bf16

TEXTS = [
    "dark matter",
    "Sparse autoencoders for interpretable semantic search over arXiv abstracts",
    "Ünïcödé, punctuation & LaTeX: $\\Lambda$CDM at z~6?!",
    "x",
    # Longer than the model's 256 tokens: the tokenizer truncates, and the positions must follow.
    " ".join(["galaxy rotation curves and the missing baryons"] * 60),
]


@pytest.fixture(scope="module")
def library(embedder):
    """(model, text -> (dim,) float32 unit vector through the library's own forward)."""
    model = embedder._model

    def encode(text: str) -> np.ndarray:
        return model.encode([text], normalize_embeddings=True, show_progress_bar=False)[0]

    return model, encode


@pytest.fixture(scope="module")
def float32_encoder(library):
    encoder = LeanQueryEncoder.from_model(library[0], "float32")
    assert encoder is not None and encoder.precision == "float32"
    return encoder


def _unit(encoder: LeanQueryEncoder, model, text: str) -> np.ndarray:
    import torch

    tokenize = getattr(model, "preprocess", None) or model.tokenize
    with torch.inference_mode():
        vec = encoder(tokenize([text])["input_ids"][0]).numpy()
    return vec / np.linalg.norm(vec)


@pytest.mark.parametrize("text", TEXTS)
def test_float32_gives_the_library_vectors(library, float32_encoder, text):
    model, encode = library
    np.testing.assert_allclose(_unit(float32_encoder, model, text), encode(text), atol=2e-6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=80).filter(str.strip))
def test_float32_agrees_on_any_text(library, float32_encoder, text):
    model, encode = library
    np.testing.assert_allclose(_unit(float32_encoder, model, text), encode(text), atol=2e-6)


def test_bfloat16_stays_within_its_documented_cosine(library):
    model, encode = library
    encoder = LeanQueryEncoder.from_model(model, "bfloat16")
    assert encoder is not None and encoder.precision == "bfloat16"
    cosines = [float(_unit(encoder, model, t) @ encode(t)) for t in TEXTS]
    assert min(cosines) > 0.9999
    # Not float32 in disguise: the rounding of the matrices shows.
    assert max(cosines) < 1 - 1e-7


def test_auto_picks_bfloat16_only_where_the_cpu_multiplies_it(library, monkeypatch):
    encoder = LeanQueryEncoder.from_model(library[0], "auto")
    assert encoder is not None
    assert encoder.precision == ("bfloat16" if native_bf16() else "float32")
    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(query_encoder, "native_bf16", lambda native=native: native)
        assert LeanQueryEncoder.from_model(library[0], "auto").precision == expected


def test_unknown_model_shapes_get_no_encoder(library):
    model = library[0]
    assert LeanQueryEncoder.from_model([object()]) is None
    # A model pooled on its first token is not this encoder's mean.
    pooling = model[1]
    assert pooling.get_config_dict()["pooling_mode"] == "mean"
    try:
        pooling.pooling_mode = "cls"
        assert LeanQueryEncoder.from_model(model) is None
    finally:
        pooling.pooling_mode = "mean"
    assert LeanQueryEncoder.from_model(model) is not None


def test_the_embedder_uses_it_unless_told_not_to(embedder):
    from indexer.embed import Embedder
    from indexer.errors import InvalidArgument

    assert embedder.lean_query
    library = Embedder(lean_query=False)
    assert not library.lean_query
    text = "tidal disruption events"
    assert float(embedder.embed_query(text) @ library.embed_query(text)) > 0.9999
    with pytest.raises(InvalidArgument, match="precision"):
        Embedder(query_precision="int4")
