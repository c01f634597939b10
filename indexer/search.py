"""Query-time retrieval over a loaded index: hard filters (indexer/filters.py), candidate retrieval (FAISS, or
exact scoring of a small filtered set), steering (indexer/steer.py), and results that explain themselves: each
result's plain cosine, the contributions that took it to its score, and the features it shares with the
steered query. Without steering and filters a search is plain dense retrieval."""

from __future__ import annotations

import numpy as np

from indexer.artifacts import IndexData
from indexer.catalog import Catalog
from indexer.codes import postings_at
from indexer.edits import (
    MIX_BETA, QueryCancelled, decode_query, edit_contributions, mix_query, residual_query, rewrite_query,
)
from indexer.errors import InvalidArgument, located
from indexer.evidence import Evidence, ProbeEvidence, query_orthogonal, read_evidence
from indexer.filters import FilterIndex, Filters, counted
from indexer.index import code_error, nearest, search_faiss, set_search_threads
from indexer.notes import REWRITE_UNCHANGED, listed_notes, rewrite_notes, term_notes, turned_notes
from indexer.results import (
    FeatureActivation, Hit, Scored, SearchOutcome, largest_contributions, rounded_contributions,
)
from indexer.steer import (
    DEFAULT_METHOD, METHODS, POSTINGS, WORD_METHODS, Embed, bonus_split, candidate_pool, concept_scores,
)
from indexer.steer_terms import ResolvedSteer, SteerTerm, code_delta, resolve_terms
from indexer.terms import sorted_unique

MAX_K = 100
EXACT_LIMIT = 20_000
"""Filtered sets up to this size are scored exactly; larger ones filter FAISS results."""
MAX_STEERED_LISTED = 64
"""Features of the steered code listed per search, strongest first: a family boost edits every member, and
listing family 0's 383 slivers beside the query's own 32 took 36 of a response's 79 KB."""


class Searcher:
    """One loaded index ready for queries: the data, its catalog, and the SAE weights as numpy arrays."""

    def __init__(self, data: IndexData, threads: int = 1) -> None:
        """`threads`: OpenMP threads of each search's FAISS calls, set in whichever thread searches."""
        self.data = data
        self.threads = threads
        self.catalog = Catalog(data)
        w = data.sae.weights_numpy()
        self.W_enc, self.b_enc, self.W_dec, self.b_dec = w["W_enc"], w["b_enc"], w["W_dec"], w["b_dec"]
        self.k = data.sae.k
        self._dense_error = code_error(data.faiss_index, data.embeddings)
        self.filters = FilterIndex(data, self.catalog)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Dense SAE code of one query: x (d,) float32 -> z (n,) float32 with at most k non-zeros."""
        pre = np.maximum((x - self.b_dec) @ self.W_enc + self.b_enc, 0.0)
        top = np.argpartition(-pre, self.k)[: self.k]
        z = np.zeros_like(pre)
        z[top] = pre[top]
        return z

    def candidates(self, q: np.ndarray, n: int, mask: np.ndarray | None, exact: bool = True) -> np.ndarray:
        """int64 rows of up to n documents nearest to q (d,) among those `mask` allows (all when None). With
        exact False and no mask the index's own scores pick them (float16 rows by default, so a document at
        the edge may trade places with its neighbour): enough for a pool that is rescored anyway, and it saves
        gathering the pool twice."""
        emb = self.data.embeddings
        if mask is None:
            if exact:
                return self._nearest(q, n)[1]
            return search_faiss(self.data.faiss_index, q, n)[1]
        allowed = int(mask.sum())
        if allowed <= EXACT_LIMIT:
            ids = np.flatnonzero(mask)
            if allowed <= n:
                return ids
            s = emb[ids] @ q
            return ids[np.argpartition(-s, n - 1)[:n]]
        want = n * 4
        while True:
            rows = self._nearest(q, want)[1]
            kept = rows[mask[rows]]
            if len(kept) >= n or want >= self.data.faiss_index.ntotal:
                return kept[:n].astype(np.int64)
            want *= 4

    def _nearest(self, q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores (n,) float32 and rows (n,) int64 of the n documents nearest to q (d,), best first."""
        return nearest(self.data.faiss_index, self.data.embeddings, q, n, self._dense_error)

    # -- search -----------------------------------------------------------------------------------
    def search(
        self, x: np.ndarray, k: int, terms: list[SteerTerm] | None = None, method: str = DEFAULT_METHOD,
        filters: Filters | None = None, query: str | None = None, embed: Embed | None = None,
    ) -> SearchOutcome:
        """Top-k documents for query vector x (d,) float32 (unit norm), steered by `terms` with `method` and
        restricted by `filters`. `embed` (text -> unit vector) is needed by the "mix" and "rewrite" methods, and
        `query` (the text) by "rewrite"."""
        if not 1 <= k <= MAX_K:
            raise InvalidArgument(f"k must be between 1 and {MAX_K}, got {k}")
        if method not in METHODS:
            raise InvalidArgument(f"method must be one of {', '.join(METHODS)}; got {method!r}")
        x = np.asarray(x, dtype=np.float32)
        set_search_threads(self.threads)
        z = self.encode(x)
        resolved = resolve_terms(self.catalog, terms or [], words_only=method in WORD_METHODS)
        for i, r in enumerate(resolved):
            if method == "rewrite" and r.term.weight < 0:
                no_less = InvalidArgument("the 'rewrite' method can only boost (a query text cannot say 'less of')")
                raise located(f"steer.{i}", no_less)
        # Weight 0 changes nothing, exactly: such terms are reported but take no part.
        active = [r for r in resolved if r.term.weight != 0]
        delta = code_delta(active, len(z))
        applied = self.filters.apply(filters or Filters(), k)
        mask, matched, notes = applied.mask, applied.matched, list(applied.notes)
        notes += term_notes(resolved, method, applied.excluded, filters.threshold if filters else 0.0,
                            self.data.names.terms, self.catalog.concepts.other_word)
        if mask is None and len(self.data.corpus) < k:
            notes.append(f"the index holds only {counted(len(self.data.corpus), 'document', 'documents')}, so fewer "
                         f"than k={k} results are returned")
        plain = not active
        if plain:
            hits = self._plain(x, k, mask)
        elif method == "concept":
            hits = self._concept(x, k, mask, active)
        else:
            try:
                hits, unchanged, along = self._edited(x, z, k, mask, active, delta, method, query, embed)
            except QueryCancelled as exc:
                raise located("steer", exc) from None
            notes += rewrite_notes(resolved, unchanged) + turned_notes(along)
        if len(hits) < min(k, len(self.data.corpus) if matched is None else matched):
            notes.append(f"the dense index found only {len(hits)} documents near the query (an index type such as IVF "
                         f"searches part of the rows), so fewer than k={k} results are returned")
        z_steered = np.maximum(z + delta, 0.0)
        n_steered = int(np.count_nonzero(z_steered > 0))
        if n_steered > MAX_STEERED_LISTED:
            notes.append(f"steered_features lists the {MAX_STEERED_LISTED} strongest of the {n_steered} features "
                         "of the steered code")
        notes += listed_notes(resolved, MAX_STEERED_LISTED)
        return SearchOutcome(
            hits=[self._hit(h, z_steered) for h in hits],
            query_features=self._activations(z), steered_features=self._activations(z_steered, MAX_STEERED_LISTED),
            resolved=resolved, method=method, matched=matched, notes=notes,
        )

    def _plain(self, x: np.ndarray, k: int, mask: np.ndarray | None) -> list[Scored]:
        if mask is None:
            scores, rows = self._nearest(x, k)
            return [Scored(int(r), float(s), float(s), []) for s, r in zip(scores, rows)]
        rows = self.candidates(x, k, mask)
        s = self.data.embeddings[rows] @ x
        order = np.argsort(-s, kind="stable")
        return [Scored(int(rows[i]), float(s[i]), float(s[i]), []) for i in order]

    def _concept(self, x: np.ndarray, k: int, mask: np.ndarray | None, active: list[ResolvedSteer]) -> list[Scored]:
        """The default method (formulas: steer.py): candidates -> each term's evidence (`_evidence`) -> its level and
        bonus (`steer.concept_scores`) -> cosine + bonuses, ranked -> each result's bonus split over the term's
        features (`steer.bonus_split`; its `_parts` is the reference that `term_level` computes faster)."""
        rows = self.candidates(x, max(candidate_pool(active), k), mask, exact=False)
        extra = []
        for r in active:
            if r.term.weight > 0:
                # The concept's strongest documents, in case few of them are among the query's neighbours.
                n = np.maximum(1, np.rint(POSTINGS * np.square(r.shares)))
                extra.append(self.data.inv.strongest(np.array([f.id for f in r.features]), n))
        if extra:
            more = np.concatenate(extra).astype(np.int64)
            rows = sorted_unique(np.concatenate([rows, more if mask is None else more[mask[more]]]))
        emb_c = np.take(self.data.embeddings, rows, axis=0)
        plain = emb_c @ x
        evidence = [self._evidence(rows, emb_c, [f.id for f in r.features], x) for r in active]
        bonus, bonuses = concept_scores(evidence, active)
        score = plain + bonus
        top = np.argsort(-score, kind="stable")[:k]
        splits = [
            bonus_split(ev[top], np.asarray(r.shares, dtype=np.float32), b[top], r.term.weight)
            for ev, b, r in zip(evidence, bonuses, active)
        ]
        out = []
        for pos, i in enumerate(top):
            # Only the features that moved the score: a family's hundreds of members mostly add nothing.
            contrib = [
                (r.features[j].id, r.features[j].name, float(split[pos, j]))
                for r, split in zip(active, splits) for j in np.flatnonzero(split[pos])
            ]
            out.append(Scored(int(rows[i]), float(score[i]), float(plain[i]), contrib))
        return out

    def _evidence(
        self, rows: np.ndarray, emb_c: np.ndarray, feats: list[int], x: np.ndarray
    ) -> Evidence | ProbeEvidence:
        """`evidence.read_evidence` (c, m) of candidate rows (c,) with embeddings emb_c (c, d) for features
        feats, the probes read orthogonally to the query x (d,) (`evidence.query_orthogonal`)."""
        concepts = self.catalog.concepts
        u = query_orthogonal(concepts.probes[feats].T, x)
        word = concepts.has_words(feats, rows)
        firing = self._firing(rows, feats) / self.data.stats.p90[feats][None, :]
        return read_evidence(emb_c, u, concepts.mean, word, firing)

    def _firing(self, rows: np.ndarray, feats: list[int]) -> np.ndarray:
        """(c, m) float32 activation of each of feats in each of rows (0 where it does not fire), by whichever
        read touches fewer entries: the features' postings (`codes.postings_at`; one feature: 0.04 ms for 1,200
        candidates, measured when a boost rescored that many), or the candidates' top-k codes through a column map
        (0.47 ms, but independent of how many features and how dense they are; a large family's postings hold
        millions)."""
        codes, inv = self.data.codes, self.data.inv
        if int(inv.counts()[feats].sum()) < len(rows) * codes.indices.shape[1]:
            return postings_at(inv.indptr, inv.doc_ids, feats, rows, inv.values)
        firing = np.zeros((len(rows), len(feats)), dtype=np.float32)
        column = np.full(codes.n_features, -1, dtype=np.int64)
        column[feats] = np.arange(len(feats))
        col = column[codes.indices[rows]]
        r, slot = np.nonzero(col >= 0)
        firing[r, col[r, slot]] = codes.values[rows[r], slot]
        return firing

    def _edited(
        self, x: np.ndarray, z: np.ndarray, k: int, mask: np.ndarray | None, active: list[ResolvedSteer],
        delta: np.ndarray, method: str, query: str | None, embed: Embed | None,
    ) -> tuple[list[Scored], list[ResolvedSteer], float]:
        """Methods that move the query vector, then search with it; also the "rewrite" terms whose rewritten
        query embeds as the query itself (`REWRITE_UNCHANGED`), and the edited query's cosine with the query."""
        parts: list[tuple[int | None, str, np.ndarray]] | None = None
        unchanged: list[ResolvedSteer] = []
        if method == "residual":
            q, norm = residual_query(x, delta, self.W_dec)
            parts = [(f.id, f.name, d * self.W_dec[f.id]) for r in active for f, d in zip(r.features, r.deltas)]
        elif method == "decode":
            q, norm = decode_query(z, delta, self.W_dec, self.b_dec), 1.0
        else:
            if embed is None:
                raise InvalidArgument(f"the {method!r} method needs an embedder")
            if method == "mix":
                vecs = [np.asarray(embed(r.text), dtype=np.float32) for r in active]
                q, norm = mix_query(x, vecs, [r.term.weight for r in active])
                parts = [(None, f"mix: {r.text}", r.term.weight * MIX_BETA * v) for r, v in zip(active, vecs)]
            else:
                if not query:
                    raise InvalidArgument("the 'rewrite' method needs the query text")
                # Each term rewrites the query on its own, so its step is linear in its weight alone.
                vecs = [np.asarray(embed(f"{query} {r.text}"), dtype=np.float32) for r in active]
                unchanged = [r for r, v in zip(active, vecs) if float(v @ x) > REWRITE_UNCHANGED]
                q, norm = rewrite_query(x, vecs, [r.term.weight for r in active])
                parts = [
                    (None, f"rewrite: the query + {r.text!r}", r.term.weight * (v - x)) for r, v in zip(active, vecs)
                ]
        rows = self.candidates(q, k, mask)
        emb_c = self.data.embeddings[rows]
        scores, plain = emb_c @ q, emb_c @ x
        out = []
        for i in np.argsort(-scores, kind="stable")[:k]:
            if parts is None:
                contrib = [(None, "query edit", float(scores[i] - plain[i]))]
            else:
                contrib = edit_contributions(emb_c[i], float(plain[i]), norm, parts)
            out.append(Scored(int(rows[i]), float(scores[i]), float(plain[i]), contrib))
        return out, unchanged, float(q @ x)

    def _activations(self, z: np.ndarray, limit: int | None = None) -> list[FeatureActivation]:
        """The code's active features (at most `limit`), strongest first."""
        nz = np.flatnonzero(z > 0)
        nz = nz[np.argsort(-z[nz], kind="stable")][:limit]
        names = self.data.names.names
        return [FeatureActivation(int(f), names[f], round(float(z[f]), 5)) for f in nz]

    def _hit(self, scored: Scored, z_query: np.ndarray) -> Hit:
        """A result with the features it shares with the (steered) query, largest joint activation first."""
        row, score, plain, parts = scored
        corpus, codes, names = self.data.corpus, self.data.codes, self.data.names.names
        feats, acts = codes.indices[row], codes.values[row]
        shared = [(float(z_query[f] * a), int(f), float(a)) for f, a in zip(feats, acts) if a > 0 and z_query[f] > 0]
        shared.sort(reverse=True)
        return Hit(
            row=row, id=corpus.ids[row], title=corpus.titles[row], score=round(score, 6), plain_score=round(plain, 6),
            categories=list(corpus.categories[row]),
            features=[FeatureActivation(f, names[f], round(a, 5)) for _, f, a in shared],
            contributions=rounded_contributions(largest_contributions(parts), score, plain),
        )
