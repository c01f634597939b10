import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.wordforms import fold, inflection_key, merge_inflections, stem_keys


def test_stem_keys_join_the_forms_of_a_word_and_keep_others_apart():
    keys = stem_keys(["robot", "robotic", "robotics", "dermoscopy", "dermoscopic", "gravitational-wave",
                      "gravitational waves", "wave", "wavelength", "llms", "llm"])
    assert len({keys[0], keys[1], keys[2]}) == 1 and keys[3] == keys[4] and keys[5] == keys[6]
    assert keys[7] != keys[8] and keys[9] == keys[10]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_merge_inflections_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    vocab = ["robot", "robots", "galaxy", "galaxies", "gas", "physics", "neural network", "neural networks"]
    terms = list(rng.choice(vocab, size=rng.integers(1, len(vocab) + 1), replace=False))
    has = rng.random((len(terms), 30)) < 0.3
    shown, merged = merge_inflections(terms, has.sum(1), sp.csr_matrix(has.astype(np.float32)))
    keys = list(dict.fromkeys(inflection_key(t) for t in terms))
    assert [inflection_key(t) for t in shown] == keys
    for g, key in enumerate(keys):
        members = [i for i, t in enumerate(terms) if inflection_key(t) == key]
        np.testing.assert_array_equal(merged[g].toarray()[0] > 0, has[members].any(0))
        assert has[terms.index(shown[g])].sum() == max(has[i].sum() for i in members)


@pytest.mark.parametrize(
    "term, key",
    [("neural networks", "neural network"), ("galaxies", "galaxy"), ("robots", "robot"), ("llms", "llm"),
     ("physics", "physics"), ("gas", "gas"), ("process", "process"), ("corpus", "corpus"), ("analysis", "analysis")],
)
def test_inflection_key(term, key):
    assert inflection_key(term) == key


def test_fold_drops_accents_and_compatibility_forms_in_either_unicode_form():
    import unicodedata

    for text in ("Schrödinger", unicodedata.normalize("NFD", "Schrödinger")):
        assert fold(text) == "Schrodinger"
    assert fold("ＧＡＬＡＸＹ\u3000ﬁeld x²") == "GALAXY field x2"
    assert fold("dark matter") == "dark matter"
