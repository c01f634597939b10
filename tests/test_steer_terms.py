import pytest

from indexer.catalog import Catalog
from indexer.errors import InvalidArgument, UnknownFeature
from indexer.steer_terms import SteerTerm, code_delta, resolve_terms


@pytest.fixture(scope="module")
def catalog(tiny_index):
    return Catalog(tiny_index)


def test_resolution_and_code_delta(catalog):
    p90 = catalog.data.stats.p90
    r = resolve_terms(catalog, [SteerTerm(1.0, feature=3), SteerTerm(-0.5, family=0), SteerTerm(1.0, concept="topic9")])
    assert [f.id for f in r[0].features] == [3] and r[0].text == "topic3"
    assert r[1].family.name == "family zero" and sum(s * s for s in r[1].shares) == pytest.approx(1.0)
    assert r[2].features[0].id == 9 and r[2].term.concept == "topic9"
    delta = code_delta(r, catalog.n_features)
    assert delta[3] == pytest.approx(1.0 * 2 * p90[3] - 0.5 * 2 * p90[3] / 2, rel=1e-5)
    with pytest.raises(InvalidArgument, match="exactly one"):
        resolve_terms(catalog, [SteerTerm(1.0)])
    with pytest.raises(InvalidArgument, match="steer.0: a steer concept must not be blank"):
        resolve_terms(catalog, [SteerTerm(1.0, concept="\u200b")])
    # One target named twice, by id and by name or through a concept, would steer past +-2: refused.
    name = catalog.data.names.names[9]
    for again in (SteerTerm(2.0, feature=name), SteerTerm(2.0, concept="topic9"), SteerTerm(-1.0, feature=9)):
        with pytest.raises(InvalidArgument, match="steer.1: steers what steer.0 steers"):
            resolve_terms(catalog, [SteerTerm(2.0, feature=9), again])
    with pytest.raises(InvalidArgument, match="steer.2: steers what steer.1 steers"):
        resolve_terms(catalog, [SteerTerm(-1.0, feature=3), SteerTerm(1.0, family=0), SteerTerm(1.0, family="family zero")])
    assert len(resolve_terms(catalog, [SteerTerm(1.0, feature=9), SteerTerm(1.0, family=0)])) == 2
    # A member of a steered family steered the same way again would also pass +-2; the other way is a refinement.
    for terms in ([SteerTerm(2.0, feature=3), SteerTerm(2.0, family=0)], [SteerTerm(-1.0, family=0), SteerTerm(-2.0, concept="topic3")]):
        with pytest.raises(InvalidArgument, match="steer.1: steers feature 3 the same way as steer.0"):
            resolve_terms(catalog, terms)
    with pytest.raises(InvalidArgument, match="weight"):
        resolve_terms(catalog, [SteerTerm(-2.1, feature=3)])


def test_a_name_no_feature_or_family_has_points_to_the_concept_form(catalog):
    for term in (SteerTerm(1.0, feature=" dark matter "), SteerTerm(1.0, family="dark matter")):
        with pytest.raises(UnknownFeature, match=r'^steer\.0: no (feature|family) named .*give \{"concept": "dark matter"\}$'):
            resolve_terms(catalog, [term])
    with pytest.raises(UnknownFeature, match=r"ids run from") as info:  # an id out of range is not a name
        resolve_terms(catalog, [SteerTerm(1.0, feature="99999")])
    assert "concept" not in str(info.value)
