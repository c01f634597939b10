"""The term matrix (indexer/terms.py): terms by the documented rules, checked against one-token-at-a-time
readings, and its postings helpers against numpy."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.terms import (
    build_term_matrix,
    clean_text,
    distinctive_terms,
    in_postings,
    is_term_word,
    sorted_unique,
    tokenize,
)
from tests.test_names import make_corpus


def test_clean_text_strips_latex() -> None:
    text = r"Mass $M_\odot \sim 10^{12}$ and $$\int f$$ in \mathcal{O}(n) via \emph{sparse} \(x\) codes"
    out = clean_text(text)
    assert "$" not in out and "\\" not in out and "odot" not in out and "int f" not in out
    assert "mathcal" not in out and "emph" not in out
    assert "sparse" in out and "codes" in out
    assert tokenize("Dark-matter halos. Stars")[:4] == ["dark-matter", "halos", ".", "stars"]


def test_an_accented_word_is_one_word_however_it_is_written() -> None:
    # Once "schr odinger" and "pok emon": names were made of the halves a LaTeX accent left.
    for text in (r'Schr\"odinger bridges', r'Schr\"{o}dinger bridges', r'{\"o}'.join(["Schr", "dinger bridges"]),
                 "Schrödinger bridges", "Schro\u0308dinger bridges"):
        assert tokenize(text) == ["schrodinger", "bridges"], text
    assert tokenize(r"Pok\'emon, moir\'e, Erd\H{o}s, \c{C}ali\c{s}kan") == [
        "pokemon", ",", "moire", ",", "erdos", ",", "caliskan"]
    assert tokenize("ﬁeld ＦＩＥＬＤ") == ["field", "field"]


def test_ordinals_and_decimal_numbers_leave_no_word_pieces() -> None:
    # Once names such as "ordinary differential equations, th order" and "replay buffers, 0m parameters".
    toks = tokenize("The $p$-th order model has 173.0M parameters")
    assert [t for t in toks if is_term_word(t)] == ["order", "model", "parameters"]
    assert [t for t in tokenize("3D scenes over 5G") if is_term_word(t)] == ["3d", "scenes", "5g"]


def brute_terms(texts: list[str], min_df: int) -> list[set[str]]:
    """Per-document term sets by the documented rules, one token at a time."""
    per_doc = []
    for text in texts:
        toks = tokenize(text)
        terms = {t for t in toks if is_term_word(t)}
        terms |= {f"{a} {b}" for a, b in zip(toks, toks[1:]) if is_term_word(a) and is_term_word(b)}
        per_doc.append(terms)
    df: dict[str, int] = {}
    for terms in per_doc:
        for t in terms:
            df[t] = df.get(t, 0) + 1
    return [{t for t in terms if df[t] >= min_df} for terms in per_doc]


def test_term_matrix_matches_brute_force() -> None:
    texts, _ = make_corpus(seed=3)
    texts = texts[:80] + ["Stop words of the art. Sentence end, breaks: dark matter; dark matter"]
    tm = build_term_matrix(texts, min_df=2)
    expected = brute_terms(texts, 2)
    for d in range(len(texts)):
        got = {tm.terms[t] for t in tm.doc_terms[tm.doc_indptr[d] : tm.doc_indptr[d + 1]]}
        assert got == expected[d], d
    for t in range(tm.n_terms):
        docs = tm.docs_of(t)
        assert (np.diff(docs) > 0).all() and len(docs) == tm.df[t]
        if " " in tm.terms[t]:
            a, b = tm.parts[t]
            assert f"{tm.terms[a]} {tm.terms[b]}" == tm.terms[t]
        else:
            assert tuple(tm.parts[t]) == (-1, -1)
    # A stop word is never a term nor half of one ("state of the art" gives neither "the" nor "the art").
    assert tm.term_id("the") == -1 and tm.term_id("the art") == -1 and tm.term_id("of the") == -1


@settings(max_examples=30, deadline=None)
@given(st.lists(st.text(alphabet="ab cd$\\{}_^.,-efg", max_size=40), min_size=1, max_size=12), st.integers(1, 3))
def test_term_matrix_property(texts: list[str], min_df: int) -> None:
    tm = build_term_matrix(texts, min_df=min_df)
    expected = brute_terms(texts, min_df)
    for d in range(len(texts)):
        got = {tm.terms[t] for t in tm.doc_terms[tm.doc_indptr[d] : tm.doc_indptr[d + 1]]}
        assert got == expected[d]


def test_contains_matches_membership() -> None:
    texts, _ = make_corpus(seed=4)
    tm = build_term_matrix(texts[:100], min_df=2)
    docs = np.arange(100)
    for t in range(0, tm.n_terms, 7):
        want = np.isin(docs, tm.docs_of(t))
        assert (tm.contains(t, docs) == want).all()


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.integers(-50, 50)), docs=st.lists(st.integers(-60, 60)))
def test_sorted_unique_and_in_postings_match_numpy(keys: list[int], docs: list[int]) -> None:
    unique = sorted_unique(np.array(keys, dtype=np.int64))
    np.testing.assert_array_equal(unique, np.unique(np.array(keys, dtype=np.int64)))
    np.testing.assert_array_equal(in_postings(unique, np.array(docs, dtype=np.int64)), np.isin(docs, keys))


def test_distinctive_terms_match_brute_force_scores() -> None:
    texts, _ = make_corpus(seed=5)
    tm = build_term_matrix(texts, min_df=3)
    docs = np.arange(0, 40, dtype=np.int32)
    ids, scores = distinctive_terms(tm, docs, limit=15)
    brute = []
    for t in range(tm.n_terms):
        k = int(np.isin(docs, tm.docs_of(t)).sum())
        if k >= 2:
            p_in, p_bg = k / len(docs), (tm.df[t] + 1) / (tm.n_docs + 2)
            s = p_in * np.log(p_in / p_bg)
            if s > 0:
                brute.append((-s, t))
    brute.sort()
    assert list(ids) == [t for _, t in brute[:15]]
    np.testing.assert_allclose(scores, [-s for s, _ in brute[:15]], rtol=1e-12)
