import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.errors import InvalidArgument, UnknownFamily, UnknownFeature
from indexer.evidence import FIRE_CAP, FIRE_EVIDENCE, MIN_BACKGROUND, WORD_EVIDENCE
from indexer.filters import Filters, Target
from indexer.index import build_faiss
from indexer.sae import encode_array
from indexer.search import Searcher
from indexer.steer import METHODS
from indexer.steer_terms import STEER_SCALE, SteerTerm
from tests.conftest import fires, make_tiny_index


@pytest.fixture(scope="module")
def searcher(tiny_index):
    return Searcher(tiny_index)


def share_firing(searcher, rows, feature):
    """Share of result documents where `feature` is active."""
    return np.mean([fires(searcher.data, r, feature) for r in rows])


def query_vec(searcher, row=0):
    return searcher.data.embeddings[row]


def fake_embed(searcher):
    """Text -> unit vector for the mix and rewrite methods: 'topicN' words map onto feature N's decoder row."""
    def embed(text):
        v = np.zeros(searcher.W_dec.shape[1], dtype=np.float32)
        for word in text.split():
            if word.startswith("topic") and word[5:].isdigit():
                v += searcher.W_dec[int(word[5:])]
        v += 1e-3
        return v / np.linalg.norm(v)
    return embed


def test_unsteered_search_is_plain_dense_retrieval(searcher):
    x = query_vec(searcher, 5)
    out = searcher.search(x, 10)
    brute = np.argsort(-(searcher.data.embeddings @ x))[:10]
    assert [h.row for h in out.hits] == brute.tolist()
    assert all(a.score >= b.score for a, b in zip(out.hits, out.hits[1:]))
    assert all(h.score == h.plain_score and h.contributions == [] for h in out.hits)


def test_a_search_sets_faiss_threads_in_the_thread_that_runs_it(tiny_index):
    import threading

    import faiss

    # OpenMP keeps the count per thread: a server's worker threads start from the default, not the app's setting.
    seen = []
    searcher = Searcher(tiny_index, threads=3)
    worker = threading.Thread(target=lambda: (searcher.search(query_vec(searcher), 5), seen.append(faiss.omp_get_max_threads())))
    worker.start()
    worker.join()
    assert seen == [3]


@pytest.mark.parametrize("method", ["concept", "residual", "decode"])
def test_weight_zero_changes_nothing(searcher, method):
    x = query_vec(searcher, 3)
    plain = searcher.search(x, 10)
    zero = searcher.search(x, 10, [SteerTerm(weight=0.0, feature=7)], method=method)
    assert [(h.row, h.score) for h in zero.hits] == [(h.row, h.score) for h in plain.hits]


def test_a_feature_that_never_fires_cannot_steer_though_weight_zero_may_name_it(tiny_index):
    import dataclasses

    p90 = tiny_index.stats.p90.copy()
    p90[5] = 0.0
    dead = Searcher(dataclasses.replace(tiny_index, stats=dataclasses.replace(tiny_index.stats, p90=p90)))
    x = query_vec(dead, 3)
    with pytest.raises(UnknownFeature, match="^steer.0: feature 5 .* never fires"):
        dead.search(x, 10, [SteerTerm(-1.0, feature=5)])
    zero = dead.search(x, 10, [SteerTerm(0.0, feature=5)])
    assert zero.resolved[0].features[0].id == 5
    assert [(h.row, h.score) for h in zero.hits] == [(h.row, h.score) for h in dead.search(x, 10).hits]


@pytest.mark.parametrize("method", ["concept", "residual"])
@pytest.mark.parametrize("row", [11, 40, 77])
def test_suppressing_the_strongest_feature_lowers_its_share(searcher, method, row):
    x = query_vec(searcher, row)
    strongest = searcher.search(x, 20).query_features[0].id
    before = share_firing(searcher, [h.row for h in searcher.search(x, 20).hits], strongest)
    steered = searcher.search(x, 20, [SteerTerm(-1.0, strongest)], method=method)
    assert share_firing(searcher, [h.row for h in steered.hits], strongest) < before


@pytest.mark.parametrize("method", ["concept", "residual"])
def test_boosting_a_feature_raises_its_share(searcher, method):
    x = query_vec(searcher, 11)
    query_feats = {a.id for a in searcher.search(x, 20).query_features}
    target = next(f for f in range(searcher.catalog.n_features) if f not in query_feats and searcher.data.stats.p90[f] > 0)
    before = share_firing(searcher, [h.row for h in searcher.search(x, 20).hits], target)
    steered = searcher.search(x, 20, [SteerTerm(1.0, target)], method=method)
    assert share_firing(searcher, [h.row for h in steered.hits], target) > before


def family_share(searcher, rows, members):
    return np.mean([any(fires(searcher.data, r, f) for f in members) for r in rows])


@pytest.mark.parametrize("row", [3, 5, 21])
def test_a_family_steer_moves_the_documents_of_any_member(searcher, row):
    # A family's members are sub-topics: a document about one of them carries the family as a whole.
    members = [0, 1, 2, 3]
    x = query_vec(searcher, row)
    plain = family_share(searcher, [h.row for h in searcher.search(x, 20).hits], members)
    boosted = searcher.search(x, 20, [SteerTerm(1.0, family="family zero")])
    suppressed = searcher.search(x, 20, [SteerTerm(-1.0, family="family zero")])
    assert family_share(searcher, [h.row for h in boosted.hits], members) >= plain + 0.15
    # (Averaging the members' evidence instead lowered it by 0.15 to 0.2 here.)
    assert family_share(searcher, [h.row for h in suppressed.hits], members) <= plain - 0.25


def test_a_stronger_weight_steers_at_least_as_far(searcher):
    x = query_vec(searcher, 11)
    target = 9
    shares = [share_firing(searcher, [h.row for h in searcher.search(x, 20, [SteerTerm(w, target)]).hits], target) for w in (0.5, 1.0, 2.0)]
    assert shares == sorted(shares) and shares[-1] > shares[0]


@pytest.mark.parametrize(
    "method, weight", [(m, w) for m in METHODS for w in (1.0, -1.5) if not (m == "rewrite" and w < 0)]
)
def test_contributions_add_up_to_the_score_difference(searcher, method, weight):
    x = query_vec(searcher, 21)
    terms = [SteerTerm(weight, feature=4), SteerTerm(0.5, family="family zero")]
    out = searcher.search(x, 10, terms, method=method, query="topic1 topic2", embed=fake_embed(searcher))
    emb = searcher.data.embeddings
    assert out.hits and any(h.contributions for h in out.hits)
    for h in out.hits:
        assert h.plain_score == pytest.approx(float(emb[h.row] @ x), abs=1e-5)
        assert h.score - h.plain_score == pytest.approx(sum(c.value for c in h.contributions), abs=1e-9)
        sizes = [abs(c.value) for c in h.contributions]
        assert sizes == sorted(sizes, reverse=True)
    assert [h.score for h in out.hits] == sorted((h.score for h in out.hits), reverse=True)


def test_concept_contributions_name_the_steered_features(searcher):
    out = searcher.search(query_vec(searcher, 8), 10, [SteerTerm(1.0, family="family four")])
    members = {4, 5, 6}
    for h in out.hits:
        assert {c.id for c in h.contributions} <= members
        # Members that added nothing to this result are left out.
        assert all(c.value != 0 for c in h.contributions)


def test_steered_code_moves_by_the_documented_amount(searcher):
    x = query_vec(searcher, 2)
    target = 9
    out = searcher.search(x, 5, [SteerTerm(1.5, target)])
    z = searcher.encode(x)
    expected = z[target] + 1.5 * STEER_SCALE * searcher.data.stats.p90[target]
    got = {a.id: a.activation for a in out.steered_features}[target]
    assert got == pytest.approx(expected, rel=1e-4)


def test_the_steered_code_lists_its_strongest_features_and_says_when_there_are_more(searcher, monkeypatch):
    x, terms = query_vec(searcher, 2), [SteerTerm(1.0, family="family zero")]
    full = searcher.search(x, 5, terms)
    assert not any("steered_features" in n for n in full.notes)
    monkeypatch.setattr("indexer.search.MAX_STEERED_LISTED", 3)
    capped = searcher.search(x, 5, terms)
    assert capped.steered_features == full.steered_features[:3]
    assert [a.activation for a in full.steered_features] == sorted((a.activation for a in full.steered_features), reverse=True)
    assert f"the 3 strongest of the {len(full.steered_features)} features" in " ".join(capped.notes)
    assert [h.row for h in capped.hits] == [h.row for h in full.hits]


def test_result_features_are_shared_with_the_steered_query(searcher):
    out = searcher.search(query_vec(searcher, 4), 10, [SteerTerm(1.0, "topic3 words")])
    z = dict((a.id, a.activation) for a in out.steered_features)
    codes = searcher.data.codes
    for hit in out.hits:
        doc = dict(zip(codes.indices[hit.row].tolist(), codes.values[hit.row].tolist()))
        # Every feature both fire, largest joint activation first (a brute-force reading of the two codes).
        shared = sorted((f for f in z if doc.get(f, 0) > 0), key=lambda f: -z[f] * doc[f])
        assert [f.id for f in hit.features] == shared
    assert any(hit.features for hit in out.hits)


@pytest.mark.parametrize("many", [False, True])
def test_candidate_activations_match_the_codes(searcher, many):
    # One feature reads its postings; every feature at once reads the candidates' codes: both give the codes.
    data = searcher.data
    rows = np.arange(1, len(data.corpus), 2)
    feats = [int(f) for f in np.flatnonzero(data.stats.p90 > 0)] if many else [5]
    got = searcher._firing(rows, feats)
    for i, row in enumerate(rows):
        for j, f in enumerate(feats):
            assert got[i, j] == pytest.approx(float(data.codes.values[row][data.codes.indices[row] == f].sum()))


@pytest.mark.parametrize("exact_limit", [0, 20_000])
def test_filtered_candidates_are_the_nearest_allowed(searcher, monkeypatch, exact_limit):
    # Limit 0 sends every filter through FAISS and the widening loop; the default scores the allowed set.
    monkeypatch.setattr("indexer.search.EXACT_LIMIT", exact_limit)
    emb = searcher.data.embeddings
    x = query_vec(searcher, 8)
    mask = np.arange(len(emb)) % 3 == 0
    rows = searcher.candidates(x, 25, mask)
    allowed = np.flatnonzero(mask)
    expected = allowed[np.argsort(-(emb[allowed] @ x))[:25]]
    assert sorted(rows.tolist()) == sorted(expected.tolist())


def test_concept_evidence_matches_a_brute_force_reading(searcher):
    data, concepts = searcher.data, searcher.catalog.concepts
    rows = np.arange(0, len(data.corpus), 3)
    feats = [5, 11, 17]
    x = query_vec(searcher, 5)
    got = searcher._evidence(rows, data.embeddings[rows], feats, x)
    texts = data.corpus.texts()
    for j, f in enumerate(feats):
        term = concepts.concept_term(f)
        # The probe without its component along the query.
        u = concepts.probes[f] - float(concepts.probes[f] @ x) * x
        reading, clean = [], []
        for row in rows:
            strength = float((data.embeddings[row] - concepts.mean) @ u)
            word = f" {term} " in " " + texts[row].lower().replace(".", " ") + " "
            acts = data.codes.values[row][data.codes.indices[row] == f]
            firing = min(float(acts.sum()) / data.stats.p90[f], FIRE_CAP)
            reading.append(strength + WORD_EVIDENCE * word + FIRE_EVIDENCE * firing)
            clean.append(not word and firing == 0)
        # Measured from the median reading of the candidates with neither the word nor the feature firing.
        background = float(np.median(np.array(reading)[clean]))
        assert sum(clean) >= MIN_BACKGROUND and abs(background) > 1e-3
        np.testing.assert_allclose(got.value[:, j], np.array(reading) - background, atol=1e-4)
        np.testing.assert_array_equal(got.direct[:, j], ~np.array(clean))


@pytest.mark.parametrize("weight", [1.0, -1.0])
def test_a_family_steer_reads_the_same_evidence_factored_or_dense(searcher, monkeypatch, weight):
    x, term = query_vec(searcher, 2), [SteerTerm(weight, family="family zero")]
    plain = [h.row for h in searcher.search(x, 10).hits]
    monkeypatch.setattr("indexer.evidence.FACTORED_CELLS", 10**9)
    dense = searcher.search(x, 10, term).hits
    monkeypatch.setattr("indexer.evidence.FACTORED_CELLS", 1)
    monkeypatch.setattr("indexer.evidence.PAIRS_PER_CELL", 1.01)
    factored = searcher.search(x, 10, term).hits
    assert [h.row for h in dense] != plain
    assert [h.row for h in factored] == [h.row for h in dense]
    for a, b in zip(factored, dense):
        assert a.score == pytest.approx(b.score, abs=1e-5)
        assert [c.id for c in a.contributions] == [c.id for c in b.contributions]
        np.testing.assert_allclose([c.value for c in a.contributions], [c.value for c in b.contributions], atol=1e-5)


def test_query_features_strongest_first(searcher):
    acts = [a.activation for a in searcher.search(query_vec(searcher, 1), 3).query_features]
    assert acts == sorted(acts, reverse=True)
    x = query_vec(searcher, 1)
    pre = np.maximum((x - searcher.b_dec) @ searcher.W_enc + searcher.b_enc, 0)  # the SAE's k largest, by hand
    top = np.argsort(-pre)[: searcher.k]
    assert acts == pytest.approx(sorted(pre[top][pre[top] > 0], reverse=True), abs=1e-5)


def test_the_query_code_is_the_sae_encoders_own(searcher):
    # Searcher.encode is a numpy copy of the SAE's TopK encoder (no torch per query); the two must agree.
    x = searcher.data.embeddings[:40]
    idx, val = encode_array(searcher.data.sae, x)
    for row, (i, v) in enumerate(zip(idx, val)):
        z = searcher.encode(x[row])
        expected = np.zeros_like(z)
        expected[i] = v
        np.testing.assert_allclose(z, expected, atol=1e-5)


def test_family_steer_spreads_over_members(searcher):
    out = searcher.search(query_vec(searcher, 1), 3, [SteerTerm(1.0, family="family zero")])
    (r,) = out.resolved
    assert [f.id for f in r.features] == [0, 1, 2, 3] and r.family.id == 0
    assert sum(d * d for d in r.deltas) == pytest.approx(
        sum((STEER_SCALE * searcher.data.stats.p90[f]) ** 2 for f in [0, 1, 2, 3]) / 4, rel=1e-5
    )


def test_free_text_concept_resolves_to_the_feature_of_its_word(searcher):
    out = searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="topic6")])
    (r,) = out.resolved
    assert r.features[0].id == 6 and r.text == "topic6"
    with pytest.raises(UnknownFeature, match="no feature matches"):
        searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="zzzz qqqq")])
    assert not any("predict where no feature fires" in n for n in out.notes)
    # "words" is in every name but predicts no feature's firing: the steer goes ahead and says on what.
    weak = searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="words")])
    f = weak.resolved[0].features[0]
    assert weak.resolved[0].matched_term is None
    assert weak.notes == [f"steer.0: the words 'words' predict where no feature fires; it steers feature {f.id} "
                          f"({f.name!r}), whose name or distinctive terms hold 'words'"]
    # A word the feature does not hold is named as such, not passed off as matched.
    part = searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="words zzqv")])
    assert part.notes[0].endswith("whose name or distinctive terms hold 'words' but not 'zzqv'")
    # A term that covers only part of the words: the steer says what it follows.
    some = searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="topic6 zzqv")])
    assert some.resolved[0].features[0].id == 6
    assert some.notes == [f"steer.0: the words 'topic6 zzqv' are read by their part 'topic6', which leads to feature 6 "
                          f"({some.resolved[0].features[0].name!r}); the other words do not steer"]
    # The mix steers by the words themselves, whatever feature they name.
    mixed = searcher.search(query_vec(searcher, 1), 5, [SteerTerm(1.0, concept="words")], method="mix", query="q",
                            embed=fake_embed(searcher))
    assert not any("predict where no feature fires" in n for n in mixed.notes)


@settings(max_examples=25, deadline=None)
@given(feature=st.integers(0, 23), threshold=st.sampled_from([0.0, 0.5, 1.0]), row=st.integers(0, 239))
def test_exclude_never_returns_a_document_where_the_feature_fires(searcher, feature, threshold, row):
    filters = Filters(exclude=[Target(feature=feature)], threshold=threshold)
    out = searcher.search(query_vec(searcher, row), 30, [SteerTerm(1.0, feature=feature)], filters=filters)
    assert out.hits and not any(fires(searcher.data, h.row, feature, threshold) for h in out.hits)


def test_boosting_only_what_exclude_names_is_said(searcher):
    x = query_vec(searcher, 30)
    note = "steer.1 boosts only features that exclude names, so it can lift only documents where they do not fire"
    family = Filters(exclude=[Target(family="family four")])  # features 4, 5 and 6
    assert searcher.search(x, 10, [SteerTerm(1.0, 2), SteerTerm(1.0, 5)], filters=family).notes == [note]
    weak = Filters(exclude=[Target(family="family four")], threshold=0.5)  # where they fire weakly, they may boost
    assert searcher.search(x, 10, [SteerTerm(1.0, 2), SteerTerm(1.0, 5)], filters=weak).notes == [note + " above 0.5 x their p90"]
    # Suppressing what is excluded anyway, or boosting a feature outside it, is no contradiction.
    assert searcher.search(x, 10, [SteerTerm(1.0, 2), SteerTerm(-1.0, 5)], filters=family).notes == []
    assert searcher.search(x, 10, [SteerTerm(1.0, 2)], filters=Filters(exclude=[Target(feature=5)])).notes == []


def test_require_keeps_only_documents_where_the_feature_fires(searcher):
    x = query_vec(searcher, 30)
    out = searcher.search(x, 10, filters=Filters(require=[Target(feature=2)]))
    allowed = np.flatnonzero([fires(searcher.data, r, 2) for r in range(len(searcher.data.corpus))])
    brute = allowed[np.argsort(-(searcher.data.embeddings[allowed] @ x))[:10]]
    assert [h.row for h in out.hits] == brute.tolist()


def test_family_exclusion_removes_every_member(searcher):
    out = searcher.search(query_vec(searcher, 30), 20, filters=Filters(exclude=[Target(family="family four")]))
    assert not any(fires(searcher.data, h.row, f) for h in out.hits for f in (4, 5, 6))


def test_categories_filter_and_short_result_notice(searcher):
    x = query_vec(searcher, 30)
    out = searcher.search(x, 10, filters=Filters(categories=["cat.1"]))
    assert out.hits and all("cat.1" in h.categories for h in out.hits)
    narrow = Filters(require=[Target(feature=2), Target(feature=7)], categories=["cat"])
    few = searcher.search(x, 50, filters=narrow)
    assert few.matched == len(few.hits) < 50
    assert few.notes and "fewer than k=50" in few.notes[0]
    none = searcher.search(x, 10, filters=Filters(categories=["no.such"]))
    assert none.hits == [] and "no document passes the filters, so there are no results" in none.notes


def test_a_k_larger_than_the_index_is_said():
    small = Searcher(make_tiny_index(n_docs=60))
    x = small.data.embeddings[3]
    out = small.search(x, 100)
    assert len(out.hits) == 60
    assert out.notes == ["the index holds only 60 documents, so fewer than k=100 results are returned"]
    assert small.search(x, 60).notes == []


def test_an_ivf_index_returns_distinct_documents_and_says_when_it_finds_fewer_than_k():
    data = make_tiny_index()
    data.faiss_index = build_faiss(data.embeddings, "IVF8,Flat")  # nprobe 1: one list of 8 is searched
    ivf = Searcher(data)
    x = data.embeddings[5]
    for out in (ivf.search(x, 100), ivf.search(x, 100, [SteerTerm(-1.0, feature=ivf.search(x, 1).query_features[0].id)])):
        rows = [h.row for h in out.hits]
        assert 0 < len(rows) < 100 and min(rows) >= 0 and len(set(rows)) == len(rows)
        assert any(n.startswith(f"the dense index found only {len(rows)} documents") for n in out.notes)


def test_mix_and_rewrite_need_an_embedder(searcher):
    x = query_vec(searcher, 3)
    with pytest.raises(InvalidArgument, match="embedder"):
        searcher.search(x, 5, [SteerTerm(1.0, 3)], method="mix")
    with pytest.raises(InvalidArgument, match="only boost"):
        searcher.search(x, 5, [SteerTerm(-1.0, 3)], method="rewrite", query="q", embed=fake_embed(searcher))


def test_word_methods_steer_by_a_concept_no_feature_matches(searcher):
    x, term = query_vec(searcher, 3), SteerTerm(1.0, concept="zzqx")
    with pytest.raises(UnknownFeature, match="no feature matches"):
        searcher.search(x, 5, [term])
    plain = searcher.search(x, 5)
    for method in ("mix", "rewrite"):
        out = searcher.search(x, 5, [term], method=method, query="q", embed=fake_embed(searcher))
        assert out.resolved[0].features == [] and out.resolved[0].text == "zzqx"
        assert [h.row for h in out.hits] != [h.row for h in plain.hits], "the words still moved the query"


def test_bad_steer_terms_are_refused(searcher):
    x = query_vec(searcher)
    with pytest.raises(UnknownFeature) as info:
        searcher.search(x, 5, [SteerTerm(1.0, "topic3 word")])
    assert "topic3 words" in info.value.suggestions
    with pytest.raises(UnknownFeature, match="ids run from 0"):
        searcher.search(x, 5, [SteerTerm(1.0, 10_000)])
    with pytest.raises(UnknownFamily, match=r"^steer\.1: no family named"):
        searcher.search(x, 5, [SteerTerm(1.0, 3), SteerTerm(1.0, family="no such family")])
    with pytest.raises(InvalidArgument, match="blank"):
        searcher.search(x, 5, [SteerTerm(1.0, concept="  ")], method="mix", query="q", embed=fake_embed(searcher))
    with pytest.raises(InvalidArgument, match="weight"):
        searcher.search(x, 5, [SteerTerm(2.5, 1)])
    with pytest.raises(InvalidArgument, match="exactly one"):
        searcher.search(x, 5, [SteerTerm(1.0, 1, family=0)])
    with pytest.raises(InvalidArgument, match="k must"):
        searcher.search(x, 0)
    with pytest.raises(InvalidArgument, match="method"):
        searcher.search(x, 5, method="magic")
    with pytest.raises(InvalidArgument, match="threshold"):
        Filters(threshold=-1.0)


def test_rewrite_moves_the_query_toward_the_rewritten_text_by_its_weight(searcher):
    x, embed, emb = query_vec(searcher, 3), fake_embed(searcher), searcher.data.embeddings
    rewritten = embed("q topic7")
    for weight in (0.5, 1.0, 2.0):
        out = searcher.search(x, 5, [SteerTerm(weight, concept="topic7")], method="rewrite", query="q", embed=embed)
        q = x + weight * (rewritten - x)
        q /= np.linalg.norm(q)
        assert [h.row for h in out.hits] == np.argsort(-(emb @ q))[:5].tolist()
        assert [h.score for h in out.hits] == pytest.approx((emb @ q)[[h.row for h in out.hits]].tolist(), abs=1e-5)
    # A term at 0.001 barely moves the query.
    once = searcher.search(x, 5, [SteerTerm(1.0, concept="topic7")], method="rewrite", query="q", embed=embed)
    tiny = [SteerTerm(1.0, concept="topic7"), SteerTerm(0.001, concept="topic2")]
    out = searcher.search(x, 5, tiny, method="rewrite", query="q", embed=embed)
    assert [h.row for h in out.hits] == [h.row for h in once.hits]
