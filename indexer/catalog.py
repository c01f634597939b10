"""Feature and family lookups over a loaded index: resolve a reference (id or name), search features by the
words they stand for, and describe a feature or family. Read-only; built once per loaded index."""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from indexer.artifacts import IndexData
from indexer.concepts import Concepts, build_concepts
from indexer.errors import InvalidArgument, UnknownFamily, UnknownFeature
from indexer.terms import plain_letters
from indexer.wordsearch import WordMatch, has_text, lexical_index, lexical_scores, name_words, rank_by_word

log = logging.getLogger(__name__)


def _is_id(text: str) -> bool:
    """An id is ASCII digits: str.isdigit passes "²", which int() refuses, and int() reads the Arabic-Indic "٣" as 3."""
    return text.isascii() and text.isdigit()


def name_key(name: str) -> str:
    """How an exact name is matched: case, surrounding space, accents and Unicode form aside (`plain_letters`: a
    name typed with accents, Unicode or LaTeX, decomposed or not, or in full-width letters is the same name; names
    are made from words without accents, `terms.clean_text`)."""
    return plain_letters(name).strip().lower()


def _close_names(ref: str, names: dict[str, int], n: int = 5) -> list[str]:
    """Names (lower case) to suggest for an unknown one: those that begin with it as their first phrase ("dark
    matter" for "dark matter, particles, scattering"), then those that hold it as a word, earliest first
    ("tactile" for "vision-based tactile sensors, tactile sensing"), then the closest spellings."""
    low = name_key(ref)
    led = [name for name in names if name.split(",")[0].strip() == low]
    word = re.compile(rf"(?<!\w){re.escape(low)}(?!\w)")
    held = sorted((m.start(), name) for name in names if low and (m := word.search(name)))
    close = difflib.get_close_matches(low, list(names), n=n, cutoff=0.5)
    return list(dict.fromkeys(led + [name for _, name in held[:n]] + close))[:n]


def _refuse_blank(ref: int | str, kind: str) -> None:
    # A blank name would otherwise be "no feature named '  '", with a hint to steer by no words at all.
    if isinstance(ref, str) and not has_text(ref):
        raise InvalidArgument(f"a {kind} name must not be blank; give an id or a name")


@dataclass(frozen=True)
class Ref:
    """A feature or family as the API shows it in lists."""

    id: int
    name: str


@dataclass(frozen=True)
class FeatureMatch:
    """One hit of a feature search."""

    id: int
    name: str
    density: float
    trust: float
    status: str
    score: float
    matched_term: WordMatch | None = None
    """The term of the text that the feature stands for, with how the two overlap; None for a name-only match."""
    concept_term: str | None = None
    """The word a steer of this feature follows (`Concepts.concept_term`): another than the one searched for when
    the feature stands for several ("ligo" finds a feature whose concept term is "street")."""


def _refuse_shared(same: dict[str, list[int]], ref: str, kind: str, error: type[UnknownFeature]) -> None:
    """Refuse a name that several of a kind ("features", "families") have: which one is meant is for the caller."""
    ids = [str(i) for i in same.get(name_key(ref), [])]
    if len(ids) > 1:
        raise error(f"{kind} {', '.join(ids)} are all named {ref.strip()!r}; give an id", suggestions=ids)


def _resolve_ref(
    ref: int | str, same: dict[str, list[int]], by_name: dict[str, int], n: int, kind: tuple[str, str],
    error: type[UnknownFeature], suggest: Callable[[str], list[str]],
) -> int:
    """The id that `ref` names: an id (int or ASCII digit string) in [0, n), or an exact name (`name_key` keys of
    `same` and `by_name`) that one item has; "-1" is read as the id it looks like, out of range. `kind` is the
    item's word, singular and plural; `suggest` gives close names for an unknown one."""
    one, many = kind
    _refuse_blank(ref, one)
    if isinstance(ref, str):
        _refuse_shared(same, ref, many, error)
        hit = by_name.get(name_key(ref))
        if hit is not None:
            return hit
        digits = ref.strip().removeprefix("-")
        if not _is_id(digits):
            close = suggest(ref)
            hint = f"; did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
            raise error(f"no {one} named {ref!r}{hint}", suggestions=close, unknown_name=ref.strip())
        ref = int(ref.strip())
    if not 0 <= ref < n:
        raise error(f"no {one} with id {ref}; " + (f"ids run from 0 to {n - 1}" if n else f"this index has no {many}"))
    return int(ref)


class Catalog:
    """Name tables and concepts of one index."""

    def __init__(self, data: IndexData) -> None:
        self.data = data
        if data.concepts is None:
            # Every build writes its concepts: this is for indexes made in memory, and for a loaded one whose concept
            # files were removed (read without verifying checksums, which would refuse it).
            log.warning("index has no concepts; computing them now (about a minute for 100k documents)")
            data.concepts = build_concepts(data.corpus.texts(), data.codes, data.embeddings)
        self.concepts: Concepts = data.concepts
        self._best_f1 = self.concepts.best_f1()
        names = data.names
        self.n_features = len(names.names)
        self._same_name: dict[str, list[int]] = {}
        for i, name in enumerate(names.names):
            self._same_name.setdefault(name_key(name), []).append(i)
        self._by_name = {name: ids[0] for name, ids in self._same_name.items()}
        # A family is named after its parent feature, and two features may share a name.
        self._same_family_name: dict[str, list[int]] = {}
        for i, name in enumerate(data.families.names):
            self._same_family_name.setdefault(name_key(name), []).append(i)
        self._family_by_name = {name: ids[0] for name, ids in self._same_family_name.items()}
        self._listed = np.array([s != "dead" for s in names.status])
        self._lexical = lexical_index(names.names, names.terms)

    # -- resolving references -------------------------------------------------------------
    def feature_id(self, ref: int | str) -> int:
        """Feature id from an id (int or digit string) or an exact name (case-insensitive) that one feature has."""
        def suggest(name: str) -> list[str]:
            return _close_names(name, self._by_name) or [m.name for m in self.search(name, limit=5)]

        return _resolve_ref(ref, self._same_name, self._by_name, self.n_features, ("feature", "features"),
                            UnknownFeature, suggest)

    def family_id(self, ref: int | str) -> int:
        """Family id from an id or an exact family name (case-insensitive)."""
        return _resolve_ref(ref, self._same_family_name, self._family_by_name, len(self.data.families.names),
                            ("family", "families"), UnknownFamily,
                            lambda name: _close_names(name, self._family_by_name))

    def family_members(self, fam: int) -> np.ndarray:
        """(m,) int32 parent first, then children."""
        f = self.data.families
        return np.concatenate([[f.parent[fam]], f.children[fam]]).astype(np.int32)

    def ref(self, feature: int) -> Ref:
        return Ref(int(feature), self.data.names.names[feature])

    def family_ref(self, fam: int) -> Ref:
        return Ref(int(fam), self.data.families.names[fam])

    # -- searching names -------------------------------------------------------------------
    def search(self, text: str | None, limit: int = 10, **options: Any) -> list[FeatureMatch]:
        """`search_page`'s page alone."""
        return self.search_page(text, limit, **options)[1]

    def search_page(
        self, text: str | None, limit: int = 10, min_trust: float = 0.0, sort: str = "relevance", offset: int = 0
    ) -> tuple[int, list[FeatureMatch]]:
        """How many features match in all, and the page of them from `offset`: features that stand for `text`,
        best first. Score 3: the exact name. Score in (1, 2]: 1 + how well the text's words predict where the
        feature fires (`wordsearch.rank_by_word`: precision-weighted F-score times how much the word is the
        feature's own), so the feature that best *means* the word comes first. Score below 1: the words appear
        only in the name or distinctive terms (`wordsearch.lexical_scores`). Ties go to the more trusted, then the
        broader feature. Without `text`, every feature. Dead features and those trusted less than `min_trust` are
        left out; `sort` = "trust" or "density" orders by that instead. `offset` skips that many of the ordered
        features (paging)."""
        q = set(name_words(text or ""))
        if text is not None and not q:
            return 0, []
        names, stats = self.data.names, self.data.stats
        keep = self._listed & (names.trust >= min_trust)
        score = np.zeros(self.n_features)
        by_word: dict[int, WordMatch] = {}
        if q:
            score = lexical_scores(self._lexical, q, self.n_features)
            by_word = rank_by_word(self.concepts, text, self._best_f1, len(self.data.corpus))
            for f, m in by_word.items():
                score[f] = 1.0 + m.score
            score[self._same_name.get(name_key(text or ""), [])] = 3.0
            keep &= score > 0
        ids = np.flatnonzero(keep)
        rel, trust, density = score[ids], names.trust[ids].astype(np.float64), stats.density[ids].astype(np.float64)
        # Descending by the sort's keys, the last one first; equal keys keep ascending ids (lexsort is stable).
        keys = {"relevance": (density, trust, rel), "trust": (rel, trust), "density": (rel, density)}[sort]
        top = ids[np.lexsort(tuple(-k for k in keys))[offset : offset + limit]]
        return len(ids), [FeatureMatch(int(i), names.names[i], float(stats.density[i]), float(names.trust[i]),
                                       names.status[i], round(float(score[i]), 4), by_word.get(int(i)),
                                       self.concepts.concept_term(int(i))) for i in top]


@dataclass(frozen=True)
class DocActivation:
    id: str
    title: str
    activation: float


@dataclass(frozen=True)
class Related:
    id: int
    name: str
    value: float


@dataclass(frozen=True)
class FeatureDetail:
    id: int
    name: str
    description: str
    density: float
    trust: float
    status: str
    p90: float
    terms: list[str]
    concept_term: str | None
    """The word this feature is the best handle for; its steering probe is made from that word's documents."""
    top_documents: list[DocActivation]
    family: Ref | None
    neighbors: list[Related]
    cooccurring: list[Related]


@dataclass(frozen=True)
class FamilySummary:
    id: int
    name: str
    parent: Ref
    children: list[Ref]
    size: int


@dataclass(frozen=True)
class TreeNode:
    id: int
    name: str
    family: int | None
    children: list["TreeNode"]


def _related(catalog: Catalog, ids: np.ndarray, values: np.ndarray) -> list[Related]:
    return [Related(int(i), catalog.data.names.names[i], round(float(v), 4)) for i, v in zip(ids, values) if i >= 0]


def feature_detail(catalog: Catalog, ref: int | str, top: int = 10) -> FeatureDetail:
    """Everything the API shows about one feature."""
    f = catalog.feature_id(ref)
    data = catalog.data
    docs, acts = data.inv.postings(f)
    fam = int(data.families.feature_family[f])
    return FeatureDetail(
        id=f, name=data.names.names[f], description=data.names.descriptions[f],
        density=float(data.stats.density[f]), trust=float(data.names.trust[f]), status=data.names.status[f],
        p90=float(data.stats.p90[f]), terms=list(data.names.terms[f]), concept_term=catalog.concepts.concept_term(f),
        top_documents=[
            DocActivation(data.corpus.ids[d], data.corpus.titles[d], round(float(a), 5)) for d, a in zip(docs[:top], acts[:top])
        ],
        family=catalog.family_ref(fam) if fam >= 0 else None,
        neighbors=_related(catalog, data.families.neighbors[f], data.families.neighbor_sims[f]),
        cooccurring=_related(catalog, data.families.cooccurring[f], data.families.cooccur_counts[f]),
    )


def list_families(catalog: Catalog, offset: int = 0, limit: int = 50) -> tuple[int, list[FamilySummary]]:
    """Families, largest first (ties by id): (total count, one page)."""
    fam = catalog.data.families
    sizes = fam.sizes()
    order = np.lexsort((np.arange(len(sizes)), -sizes))
    page = [family_summary(catalog, int(i)) for i in order[offset : offset + limit]]
    return len(sizes), page


def family_summary(catalog: Catalog, ref: int | str) -> FamilySummary:
    i = catalog.family_id(ref)
    fam = catalog.data.families
    return FamilySummary(
        id=i, name=fam.names[i], parent=catalog.ref(int(fam.parent[i])),
        children=[catalog.ref(int(c)) for c in fam.children[i]], size=1 + len(fam.children[i]),
    )


def family_tree(catalog: Catalog, ref: int | str, max_depth: int = 6) -> TreeNode:
    """The family as a tree: its parent at the root, children below, and each child's own family nested."""
    i = catalog.family_id(ref)
    fam = catalog.data.families
    headed = {int(p): j for j, p in enumerate(fam.parent)}
    seen: set[int] = set()

    def node(feature: int, fam_id: int | None, depth: int) -> TreeNode:
        seen.add(feature)
        kids: list[TreeNode] = []
        if fam_id is not None and depth < max_depth:
            for c in fam.children[fam_id]:
                c = int(c)
                if c not in seen:
                    kids.append(node(c, headed.get(c), depth + 1))
        return TreeNode(feature, catalog.data.names.names[feature], fam_id, kids)

    return node(int(fam.parent[i]), i, 0)
