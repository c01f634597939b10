"""Build settings (indexer/config.py): the dictionary size a corpus gets, and the checks made before any work."""

import pytest

from indexer.config import BuildConfig, check_llm
from indexer.errors import InvalidArgument


def make_cfg(**overrides) -> BuildConfig:
    return BuildConfig(**{"corpus": "c.parquet", "out": "idx", **overrides})


@pytest.mark.parametrize("n_docs, latents", [
    (100, 256),  # the smallest dictionary
    (4_948, 1_024),  # the README's demo sample: about rows / 4, as a power of two
    (20_000, 4_096),  # the largest power of two below 60,000 rows
    (59_999, 4_096),
    (60_000, 6_144),  # the paper-scale dictionary from 60,000 rows on
    (115_435, 6_144),
])
def test_a_corpus_gets_a_dictionary_sized_to_its_rows(n_docs, latents):
    assert make_cfg().latents_for(n_docs) == latents


def test_a_dictionary_holds_at_least_twice_k_and_a_given_size_is_kept():
    assert make_cfg(k=200).latents_for(100) == 400
    assert make_cfg(latents=300).latents_for(115_435) == 300


@pytest.mark.parametrize("url, model, fragment", [
    ("http://", "m", "with a host"),
    ("http:// host", "m", "with a host"),
    ("http://:8080", "m", "with a host"),
    ("http://h st/v1", "m", "with a host"),
    ("http://host:99999", "m", "with a host"),
    ("ftp://host/v1", "m", "http:// or https://"),
    ("https://host/v1", " ", "needs a model name"),
    ("https://host/v1", None, "needs a model name"),
])
def test_an_llm_endpoint_a_build_could_not_ask_is_refused_before_the_build(url, model, fragment):
    with pytest.raises(InvalidArgument, match=fragment):
        check_llm(url, model)
    with pytest.raises(InvalidArgument, match=fragment):
        make_cfg(llm_base_url=url, llm_model=model)


def test_no_llm_endpoint_is_fine_and_a_good_one_passes():
    check_llm(None, None)
    check_llm("", "m")
    assert make_cfg(llm_base_url="http://127.0.0.1:8000/v1", llm_model="m").llm_model == "m"
