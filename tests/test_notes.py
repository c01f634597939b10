import pytest

from indexer.catalog import Ref
from indexer.notes import concept_note, listed_notes, rewrite_notes, term_notes, turned_notes
from indexer.steer_terms import ResolvedSteer, SteerTerm
from indexer.wordsearch import WordMatch

NAME = "semi-supervised learning, unlabeled data"


def OWN(feature, term):  # noqa: N802 - stands for Concepts.other_word: every word is read alike
    return None


def concept(text, match=None, weight=1.0, feature=7, name=NAME):
    return ResolvedSteer(SteerTerm(weight, concept=text), [Ref(feature, name)], [1.0], None, [0.1], text, match)


@pytest.mark.parametrize("text, match, note", [
    ("unlabeled data", WordMatch(0.4, "unlabeled data", 0.3, 0.5, 1.0), ""),  # the whole text: nothing to say
    ("galaxy clustring", WordMatch(0.2, "galaxy", 0.3, 0.5, 0.45),
     f"steer.2: the words 'galaxy clustring' are read by their part 'galaxy', which leads to feature 7 ({NAME!r}); "
     "the other words do not steer"),
    ("semi-peaucellier", None, f"steer.2: the words 'semi-peaucellier' predict where no feature fires; it steers "
     f"feature 7 ({NAME!r}), whose name or distinctive terms hold 'semi' but not 'peaucellier'"),
    (NAME.upper(), None, ""),  # the feature's exact name
    (NAME, WordMatch(0.2, "pseudo", 0.3, 0.5, 0.5), ""),  # its exact name, though one part of it leads there too
])
def test_a_concept_note_says_what_the_steer_follows_when_it_is_less_than_the_words(text, match, note):
    assert concept_note(2, concept(text, match), ["pseudo labels"]) == note


def test_term_notes_skip_the_methods_that_steer_by_the_words():
    partial = concept("galaxy clustring", WordMatch(0.2, "galaxy", 0.3, 0.5, 0.45))
    terms = [[] for _ in range(8)]
    assert len(term_notes([partial], "concept", set(), 0.0, terms, OWN)) == 1
    assert term_notes([partial], "mix", set(), 0.0, terms, OWN) == []
    boosted_out = concept("unlabeled data", WordMatch(0.4, "unlabeled data", 0.3, 0.5, 1.0))
    assert term_notes([boosted_out], "concept", {7}, 0.5, terms, OWN) == [
        "steer.0 boosts only features that exclude names, so it can lift only documents where they do not fire above "
        "0.5 x their p90"
    ]
    assert term_notes([concept("unlabeled data", weight=-1.0, match=boosted_out.matched_term)], "concept", {7}, 0.0,
                      terms, OWN) == []


def test_a_rewrite_note_names_the_term_by_its_place_in_the_request():
    a, b = concept("x"), concept("y")
    assert rewrite_notes([a, b], [b])[0].startswith("steer.1: the rewritten query embeds as the query itself")


def test_a_query_turned_around_by_its_edit_is_said():
    assert turned_notes(0.3) == [] and turned_notes(0.0) == []
    assert turned_notes(-0.25)[0].startswith("steer: the terms turn the query around (the edited query's cosine with it is -0.25)")


def test_a_note_says_which_steer_terms_list_only_their_first_features():
    family = ResolvedSteer(SteerTerm(1.0, family=3), [Ref(f, "f") for f in range(5)], [0.2] * 5, Ref(3, "fam"),
                           [0.1] * 5, "fam")
    one = concept("unlabeled data")
    assert listed_notes([one, family], listed=5) == []
    assert listed_notes([one, family], listed=4) == [
        "steer.1 lists the first 4 of the 5 features it resolved to (the family's parent, then its children strongest "
        "first); GET /families/3 lists them all"
    ]


def test_a_concept_note_says_when_the_feature_steers_by_a_word_the_features_read_differently():
    ligo = WordMatch(0.1, "ligo", 0.115, 0.15, 1.0)
    r = concept("LIGO", ligo, feature=2519, name="street view, detector, ligo")
    asked = []

    def street(feature, term):
        asked.append((feature, term))
        return "street"

    expected = ("steer.0: feature 2519 ('street view, detector, ligo') fires on 15% of the abstracts that say 'ligo', "
                "and steers by those that say its own word, 'street', which the features read differently (GET "
                "/features?q= lists the other features for the words)")
    assert concept_note(0, r, [], street) == expected and asked == [(2519, "ligo")]
    assert term_notes([r], "concept", set(), 0.0, [[]] * 2520, street) == [expected]
    # The methods that move the query along the feature's own direction do not steer by its concept term.
    assert term_notes([r], "residual", set(), 0.0, [[]] * 2520, street) == []
    assert concept_note(0, r, [], OWN) == ""
    partial = concept("galaxy clustring", WordMatch(0.2, "galaxy", 0.3, 0.5, 0.45))
    assert concept_note(2, partial, [], OWN) == concept_note(2, partial, [])  # one note, as before
    assert concept_note(2, partial, [], lambda f, t: "cluster").endswith(
        "the other words do not steer; feature 7 ('semi-supervised learning, unlabeled data') fires on 50% of the "
        "abstracts that say 'galaxy', and steers by those that say its own word, 'cluster', which the features read "
        "differently (GET /features?q= lists the other features for the words)")
