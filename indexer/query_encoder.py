"""A lean forward pass for one query through a BERT sentence-transformer with mean pooling (the default
all-MiniLM-L6-v2), used by `embed.Embedder.embed_query` on the CPU.

Why: for a query of ~10 tokens a forward pass mostly reads the layers' 42 MB of float32 matrices to multiply a
few rows of activations, and the library adds per-module overhead (separate query, key and value products,
attention-mask plumbing, a pooler the sentence embedding does not use). This pass does the same arithmetic in
fewer steps: one query-key-value product per layer, pre-transposed matrices, no mask (a single unpadded
sequence). On the development machine, one thread, 632 queries interleaved (`bench/query_embed.py`): p50 12.7
ms through the library, 9.5 ms here in float32, 6.9 ms in bfloat16.

In float32 its vectors are the library's to float rounding. In bfloat16 (precision "auto" on a CPU that
multiplies bfloat16 natively, AVX512-BF16 or AMX) it holds the layers' matrices in bfloat16 and reads half as
many bytes per query, at a cosine of about 0.99998 with the library's vectors: near-tied neighbours may swap
places (0.4% of a top 10 changed over those 632 queries on the full corpus), and the steering benchmark moved by
at most 0.01 (BENCHMARKS.md).

The encoder is built only for a model whose shape it knows (`LeanQueryEncoder.from_model` returns None
otherwise) and is checked against the library's forward on sample texts before it is used."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal, get_args

log = logging.getLogger(__name__)

AGREEMENT = 0.9999
"""Least cosine between this pass's and the library's vectors on the check texts for the encoder to be used."""
CHECK_TEXTS = (
    "sparse autoencoders for interpretable semantic search",
    "Dark matter halo: the mass function of galaxy clusters.",
    "robot grasping",
)
Precision = Literal["auto", "float32", "bfloat16"]
"""Precision of the encoder's matrices; "auto" is bfloat16 where `native_bf16`, else float32."""
PRECISIONS: tuple[str, ...] = get_args(Precision)


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16). Elsewhere bfloat16 products
    are emulated and slower than float32."""
    import torch

    caps = getattr(torch.cpu, "get_capabilities", None)
    if caps is None:
        return False
    found = caps()
    return bool(found.get("avx512_bf16") or found.get("amx_bf16"))


@dataclass(frozen=True)
class _Layer:
    """One transformer layer's weights: matrices in the encoder's dtype, biases and norms in float32."""

    qkv: Any
    qkv_bias: Any
    out: Any
    out_bias: Any
    norm1: tuple[Any, Any, float]
    up: Any
    up_bias: Any
    down: Any
    down_bias: Any
    norm2: tuple[Any, Any, float]


class LeanQueryEncoder:
    """Mean-pooled last hidden state of one tokenised text, (dim,) float32 torch tensor, not normalised."""

    precision: str
    """"float32" or "bfloat16": the dtype of the layers' matrices."""

    def __init__(self, bert: Any, precision: str) -> None:
        """Copy the weights of a transformers BertModel `bert`, matrices in `precision`."""
        import torch

        cfg = bert.config
        self.precision = precision
        dtype = getattr(torch, precision)
        self._heads = int(cfg.num_attention_heads)
        self._hidden = int(cfg.hidden_size)
        emb = bert.embeddings
        self._words = emb.word_embeddings.weight.detach()
        self._positions = emb.position_embeddings.weight.detach()
        self._token_type = emb.token_type_embeddings.weight.detach()[0]
        self._emb_norm = _norm(emb.LayerNorm)

        def mat(*linears: Any) -> Any:
            # (in, out) row-major: at a few rows, x @ W beat F.linear's x @ W.T by ~1 ms a query here.
            return torch.cat([lin.weight.detach() for lin in linears]).t().to(dtype).contiguous()

        def bias(*linears: Any) -> Any:
            return torch.cat([lin.bias.detach() for lin in linears]).float()

        self._layers = []
        for layer in bert.encoder.layer:
            att = layer.attention
            qkv = (att.self.query, att.self.key, att.self.value)
            self._layers.append(_Layer(
                mat(*qkv), bias(*qkv), mat(att.output.dense), bias(att.output.dense), _norm(att.output.LayerNorm),
                mat(layer.intermediate.dense), bias(layer.intermediate.dense), mat(layer.output.dense),
                bias(layer.output.dense), _norm(layer.output.LayerNorm),
            ))

    @classmethod
    def from_model(cls, model: Any, precision: Precision = "auto") -> LeanQueryEncoder | None:
        """An encoder for a loaded SentenceTransformer `model` on the CPU with its matrices in `precision` (one
        of PRECISIONS), or None when the model is not a BERT with absolute positions, erf GELU and mean pooling,
        or when this pass disagrees with the library's on `CHECK_TEXTS` (cosine below AGREEMENT)."""
        import torch

        if precision == "auto":
            precision = "bfloat16" if native_bf16() else "float32"
        elif precision == "bfloat16" and not native_bf16():
            log.warning("lean query encoder: this CPU has no native bfloat16 products; bfloat16 may be slower")

        modules = list(model)
        bert = getattr(modules[0], "auto_model", None) if modules else None
        cfg = getattr(bert, "config", None)
        pooling = modules[1].get_config_dict() if len(modules) > 1 and hasattr(modules[1], "get_config_dict") else {}
        known = (
            cfg is not None and cfg.model_type == "bert" and cfg.hidden_act == "gelu"
            and getattr(cfg, "position_embedding_type", "absolute") == "absolute"
            and (pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens"))
            and len(modules) <= 3 and all(type(m).__name__ in ("Transformer", "Pooling", "Normalize") for m in modules)
        )
        if not known:
            log.info("lean query encoder: model shape not known, using the library's forward")
            return None
        encoder = cls(bert, precision)
        tokenize = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            for text in CHECK_TEXTS:
                ids = tokenize([text])["input_ids"][0]
                ours = encoder(ids)
                theirs = model.encode(
                    [text], convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False
                )[0].float()
                cos = float(ours @ theirs / ours.norm())
                if not cos >= AGREEMENT:
                    log.warning("lean query encoder: cosine %.6f with the library on %r, using the library's forward",
                                cos, text)
                    return None
        log.info("lean query encoder: %d layers, %s matrices", len(encoder._layers), precision)
        return encoder

    def __call__(self, ids: Any) -> Any:
        """(dim,) float32 mean of the last hidden states of token ids (n,) int64, one unpadded sequence."""
        import torch.nn.functional as F

        n, h, heads = len(ids), self._hidden, self._heads
        x = self._words[ids] + self._positions[:n] + self._token_type
        x = F.layer_norm(x, (h,), *self._emb_norm)
        for lay in self._layers:
            qkv = self._linear(x, lay.qkv, lay.qkv_bias).view(n, 3, heads, h // heads).permute(1, 2, 0, 3)
            ctx = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]).transpose(0, 1).reshape(n, h)
            x = F.layer_norm(self._linear(ctx, lay.out, lay.out_bias) + x, (h,), *lay.norm1)
            up = F.gelu(self._linear(x, lay.up, lay.up_bias))
            x = F.layer_norm(self._linear(up, lay.down, lay.down_bias) + x, (h,), *lay.norm2)
        return x.mean(dim=0)

    def _linear(self, x: Any, weight: Any, bias: Any) -> Any:
        import torch

        if weight.dtype == x.dtype:
            return torch.addmm(bias, x, weight)
        # Products in the matrices' dtype, accumulated in float32 by the kernel; the rest stays float32.
        return torch.mm(x.to(weight.dtype), weight).float() + bias


def _norm(layer_norm: Any) -> tuple[Any, Any, float]:
    return layer_norm.weight.detach(), layer_norm.bias.detach(), float(layer_norm.eps)

