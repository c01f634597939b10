"""Forms of a word: singular and plural (`inflection_key`), and every form that shares a Snowball stem
(`stem_keys`), so that a user who types "robots" means "robot", and one who suppresses "robot" means "robotic"
too. Pure functions over term lists; indexer/concepts.py uses them to merge terms and widen a feature's words."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import scipy.sparse as sp
import snowballstemmer


def fold(text: str) -> str:
    """`text` as words are matched at query time: compatibility forms made plain (NFKC: full-width "ＧＡＬＡＸＹ"
    is "GALAXY", the ligature "ﬁ" is "fi") and accents dropped, so "schrodinger" and "Schrödinger", in either
    Unicode form, are one word."""
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ics")):
        return word[:-1]
    return word


def inflection_key(term: str) -> str:
    """`term` with each word made singular by light rules ("neural networks" -> "neural network", "galaxies" ->
    "galaxy"); words of up to 3 letters and words ending in -ss, -us, -is or -ics ("physics" is no plural of
    "physic") are kept as they are."""
    return " ".join(_singular(w) for w in term.split(" "))


def stem_keys(terms: list[str]) -> list[str]:
    """Each term with every word (the parts of a hyphenated word count as words) made singular (`_singular`) and
    cut to its Snowball stem, a final "i" dropped so that -y and -ic forms meet: "robot", "robotic" and
    "robotics" -> "robot"; "dermoscopy" and "dermoscopic" -> "dermoscop"; "gravitational-wave" and
    "gravitational waves" -> "gravit wave"; while "wave" and "wavelength" stay apart."""
    stemmer = snowballstemmer.stemmer("english")
    out = []
    for term in terms:
        stems = stemmer.stemWords([_singular(w) for w in re.split(r"[ -]", term) if w])
        out.append(" ".join(s[:-1] if len(s) > 4 and s.endswith("i") else s for s in stems))
    return out


def _key_groups(keys: list[str]) -> tuple[np.ndarray, sp.csr_matrix]:
    """Items grouped by equal key, groups in the order of their first member: (group (n,) int64 of each item,
    (n_groups, n) binary CSR membership)."""
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    group = rank[group.ravel()]
    members = sp.csr_matrix(
        (np.ones(len(keys), dtype=np.float32), (group, np.arange(len(keys)))), shape=(len(first), len(keys))
    )
    return group, members


def stem_groups(terms: list[str]) -> sp.csr_matrix:
    """(n_terms, n_terms) binary CSR: 1 where two terms share a `stem_keys` key (the diagonal included)."""
    _, members = _key_groups(stem_keys(terms))
    return (members.T @ members).tocsr()


def merge_inflections(
    terms: list[str], df: np.ndarray, term_docs: sp.csr_matrix
) -> tuple[list[str], sp.csr_matrix]:
    """Terms that share an `inflection_key` counted as one word: a user who types "robots" or "games" means the
    documents that say "robot" or "game" too, and a feature that fires on both would otherwise look imprecise
    for each. terms (n_terms,), df (n_terms,), term_docs (n_terms, n_docs) binary CSR -> each group's shown
    form (its member in most documents) and (n_groups, n_docs) binary CSR; groups keep the order of their first
    member."""
    group, members = _key_groups([inflection_key(t) for t in terms])
    n_groups = members.shape[0]
    merged = (members @ term_docs).tocsr()
    merged.data[:] = 1.0
    merged.sort_indices()
    # Shown form: the member in most documents (the first such term on ties).
    order = np.lexsort((np.arange(len(terms)), -np.asarray(df), group))
    lead = np.ones(len(order), dtype=bool)
    lead[1:] = group[order][1:] != group[order][:-1]
    shown = [""] * n_groups
    for t in order[lead]:
        shown[group[t]] = terms[t]
    return shown, merged
