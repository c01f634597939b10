"""Query-edit steering: the methods that move the query vector instead of rescoring documents ("residual",
"decode", "mix"; "rewrite" embeds new text), and the contributions an additive edit makes to a result's score.
Pure numpy; the searcher (indexer/search.py) applies them, indexer/steer_terms.py resolves the terms."""

from __future__ import annotations

import numpy as np

from indexer.errors import InvalidArgument

MIX_BETA = 0.8
"""Embedding-mix step per unit weight, as Weaviate's moveTo / moveAwayFrom force."""
MIN_NORM = 1e-3
"""Shortest edited query vector that is searched with (the query is a unit vector). A shorter one is what is left
when the terms cancel the query (a mix away from the query's own words at weight -1.25 leaves exactly 0): its
direction is rounding noise, and the renormalisation's contributions grow as 1 / its length (about 8e9 there)."""


class QueryCancelled(InvalidArgument):
    """The steer terms' edit leaves nothing of the query to search with (`MIN_NORM`)."""


def _unit(v: np.ndarray) -> tuple[np.ndarray, float]:
    """v (d,) normalised, float32, and the norm divided by; QueryCancelled below MIN_NORM."""
    n = float(np.linalg.norm(v))
    if not n >= MIN_NORM:
        raise QueryCancelled("the steer terms cancel the query, and nothing of it is left to search with; "
                              "use smaller weights")
    return (v / n).astype(np.float32), n


def residual_query(x: np.ndarray, delta: np.ndarray, w_dec: np.ndarray) -> tuple[np.ndarray, float]:
    """x (d,) + delta (n,) @ W_dec (n, d), normalised: (x' (d,) float32, the norm divided by)."""
    moved = np.flatnonzero(delta)
    return _unit(x + delta[moved] @ w_dec[moved])


def decode_query(z: np.ndarray, delta: np.ndarray, w_dec: np.ndarray, b_dec: np.ndarray) -> np.ndarray:
    """The paper's decode-only edit: normalise(max(z + delta, 0) @ W_dec + b_dec), (d,) float32."""
    z2 = np.maximum(z + delta, 0.0)
    live = np.flatnonzero(z2)
    return _unit(z2[live] @ w_dec[live] + b_dec)[0]


def mix_query(x: np.ndarray, texts: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, float]:
    """x (d,) + sum_i weight_i * MIX_BETA * text_i (d,), normalised: (x', the norm divided by)."""
    v = x.astype(np.float64).copy()
    for e, w in zip(texts, weights):
        v += w * MIX_BETA * e
    return _unit(v)


def rewrite_query(x: np.ndarray, rewritten: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, float]:
    """x (d,) moved toward the embedding of each rewritten query text, rewritten_i (d,), by its weight, normalised:
    (x' = normalise(x + sum_i weight_i * (rewritten_i - x)), the norm divided by). One term at weight 1 is its
    rewritten query itself, 0.5 halfway, 2 as far again: a text edit with a weight like the other methods'."""
    v = x.astype(np.float64).copy()
    for r, w in zip(rewritten, weights):
        v += w * (r - x)
    return _unit(v)


def edit_contributions(
    emb_d: np.ndarray, plain: float, norm: float, parts: list[tuple[int | None, str, np.ndarray]]
) -> list[tuple[int | None, str, float]]:
    """Contributions of an additive query edit x' = (x + sum_j v_j) / norm to one document's score:
    v_j . e_d / norm each, plus plain * (1 / norm - 1) for the renormalisation; they sum to x' . e_d - plain."""
    out = [(fid, name, float(v @ emb_d) / norm) for fid, name, v in parts]
    out.append((None, "query renormalisation", plain * (1.0 / norm - 1.0)))
    return out
