"""End to end: the real pipeline builds an index from 300 real abstracts, the app serves it with the real
model, and a client uses it as a person would."""

import shutil
import time

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.wordforms import inflection_key
from service.app import create_app
from service.settings import Settings
from tests.conftest import DEMO_CORPUS, DEMO_EMBEDDINGS, ROOT, dead_pid

pytestmark = pytest.mark.slow
KEY = "test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client(demo_index, embedder, tmp_path_factory):
    # A copy: a test here rebuilds the served index in place, and other modules read the shared demo index.
    index = tmp_path_factory.mktemp("served") / "idx"
    shutil.copytree(demo_index, index)
    settings = Settings(
        index_dir=index, data_dir=ROOT / "data", corpus=DEMO_CORPUS, embeddings=DEMO_EMBEDDINGS, admin_key=KEY
    )
    with TestClient(create_app(settings, embedder=embedder)) as c:
        yield c


def search(client, query="galaxy formation in the early universe", **body):
    r = client.post("/search", json={"query": query, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_health(client):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["index"]["documents"] == 300 and body["index"]["features"] == 256
    head = client.head("/health")
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("path, status", [
    ("/features?q=galaxies", 200), ("/features/0", 200), ("/features/99999", 404), ("/families", 200),
    ("/families/0", 200), ("/categories", 200), ("/features?limit=0", 422), ("/jobs/nope", 401),
])
def test_every_get_answers_head_with_its_status_and_headers(client, path, status):
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == status and head.content == b""
    for header in ("x-total-count", "content-length", "content-type"):  # the body HEAD leaves out is GET's own
        assert head.headers.get(header) == get.headers.get(header), header


def test_plain_search_returns_sorted_explained_results(client):
    body = search(client, k=7)
    assert len(body["results"]) == 7
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    assert body["query_features"] and body["took_ms"] > 0
    acts = [f["activation"] for f in body["query_features"]]
    assert acts == sorted(acts, reverse=True)
    assert all(r["id"] and r["title"] for r in body["results"])


def test_suppressing_the_strongest_feature_changes_the_results(client):
    plain = search(client, k=10)
    strongest = plain["query_features"][0]
    steered = search(client, k=10, steer=[{"feature": strongest["id"], "weight": -1.0}])
    assert [r["id"] for r in steered["results"]] != [r["id"] for r in plain["results"]]
    fired = lambda body: sum(strongest["id"] in {f["id"] for f in r["features"]} for r in body["results"])  # noqa: E731
    assert fired(steered) < fired(plain)
    # The same feature named by its exact name steers the same way.
    by_name = search(client, k=10, steer=[{"feature": strongest["name"], "weight": -1.0}])
    assert [r["id"] for r in by_name["results"]] == [r["id"] for r in steered["results"]]


def test_weight_zero_is_a_no_op(client):
    plain = search(client, k=10)
    zero = search(client, k=10, steer=[{"feature": plain["query_features"][0]["id"], "weight": 0}])
    assert [(r["id"], r["score"]) for r in zero["results"]] == [(r["id"], r["score"]) for r in plain["results"]]
    assert all(r["score"] == r["plain_score"] for r in zero["results"])


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"query": ""}, "query"),
        ({"query": "   "}, "empty"),
        ({"query": "\u200b\ufeff\u0001 "}, "query: query must not be empty"),  # invisible to a reader
        ({"query": "\ufe0f\ue000"}, "query: query must not be empty"),  # a variation selector, private use
        ({"query": "\u3164\u2800"}, "query: query must not be empty"),  # a Hangul filler, a blank Braille cell
        ({"query": "q", "require": [{"feature": 1}], "exclude": [{"feature": 99999}]}, "exclude.0: no feature with id 99999"),
        ({"query": "q", "steer": [{"concept": "\u200b", "weight": 1}]}, "steer.0.concept: a concept must not be blank"),
        ({"query": "x" * 2001}, "query: String should have at most 2000"),
        ({"k": 3}, "query: Field required"),
        ('{"query": "q", "steer": [{"feature": 1, "weight": NaN}]}', "steer.0.weight: Input should be a finite number"),
        # Numbers must be JSON numbers: a string or a boolean is not quietly read as one.
        ({"query": "q", "steer": [{"feature": 1, "weight": "1"}]}, "steer.0.weight: Input should be a valid number"),
        ({"query": "q", "steer": [{"feature": 1, "weight": True}]}, "steer.0.weight: Input should be a valid number"),
        ({"query": "q", "k": "5"}, "k: Input should be a valid integer"),
        ({"query": "q", "k": 5.0}, "k: Input should be a valid integer"),
        ({"query": "q", "threshold": "0.5"}, "threshold: Input should be a valid number"),
        ({"query": "q", "categories": [" "]}, "blank"),
        ({"query": "q", "categories": ["\u200b"]}, "categories: a category must not be blank"),
        ({"query": "q", "steer": [{"feature": "  ", "weight": 1}]}, "steer.0: a feature name must not be blank"),
        ({"query": "q", "exclude": [{"family": "\t"}]}, "exclude.0: a family name must not be blank"),
        ({"query": "q", "categories": ["x" * 201]}, "categories.0: String should have at most 200"),
        ({"query": "q", "steer": [{"concept": "  ", "weight": 1}], "method": "mix"}, "steer.0.concept: a concept must not be blank"),
        ({"query": "q", "steer": [{"feature": True, "weight": 1}]}, "steer.0.feature: must be an id (a whole number) or a name"),
        ({"query": "q", "steer": [{"feature": 1, "weight": 1}, {"feature": 99999, "weight": 1}]}, "steer.1: no feature with id 99999"),
        ([1, 2], "the body must be a JSON object"),
        ({"query": "q", "k": 0}, "k: Input should be greater than or equal to 1"),
        ({"query": "q", "k": 101}, "k: Input should be less than or equal to 100"),
        ({"query": "q", "steer": [{"feature": 1, "weight": 2.5}]}, "steer.0.weight: Input should be less than or equal to 2"),
        ({"query": "q", "steer": [{"feature": 1, "weight": 1}] * 33}, "steer: List should have at most 32 items"),
        ({"query": "q", "steer": [{"feature": 1, "family": 0, "weight": 1}]}, "exactly one"),
        ({"query": "q", "steer": [{"feature": "no such feature name", "weight": 1}]}, "no feature named"),
        ({"query": "q", "steer": [{"feature": 999999, "weight": 1}]}, "no feature with id"),
        ({"query": "q", "surprise": 1}, "surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_search_input_gets_422_with_a_message(client, body, fragment):
    # A string is sent as the raw body: httpx will not write NaN, which other clients do.
    raw = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, str) else {"json": body}
    r = client.post("/search", **raw)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_an_unknown_target_is_located_for_programs_too(client):
    # The same shape as a malformed field's 422: `errors` names the entry, `detail` reads as one sentence.
    for body, loc in (
        ({"query": "q", "steer": [{"feature": 1, "weight": 1}, {"feature": 99999, "weight": 1}]}, "steer.1"),
        ({"query": "q", "exclude": [{"feature": 2}, {"family": "no such family"}]}, "exclude.1"),
    ):
        r = client.post("/search", json=body).json()
        assert [e["loc"] for e in r["errors"]] == [loc]
        assert r["detail"] == f"{loc}: {r['errors'][0]['msg']}"
    assert "errors" not in client.get("/features/99999").json()  # a missing resource, not a field at fault


_REF = st.one_of(st.integers(-1, 300), st.sampled_from(["galaxy", "neural networks", "0", " ", "🚀", "dark matter", "²", "٣"]))
_WEIGHT = st.floats(-2.5, 2.5)
_TERM = st.one_of(
    st.builds(lambda f, w: {"feature": f, "weight": w}, _REF, _WEIGHT),
    st.builds(lambda f, w: {"family": f, "weight": w}, _REF, _WEIGHT),
    st.builds(lambda c, w: {"concept": c, "weight": w}, st.text(max_size=15), _WEIGHT),
)
_CONSTRAINT = st.one_of(st.builds(lambda f: {"feature": f}, _REF), st.builds(lambda f: {"family": f}, _REF))
_BODY = st.fixed_dictionaries(
    {
        "query": st.one_of(st.sampled_from(["galaxy formation", "robot grasping"]), st.text(max_size=30)),
        "k": st.integers(0, 101),
    },
    optional={
        "steer": st.lists(_TERM, max_size=3),
        "method": st.sampled_from(["concept", "residual", "decode", "mix", "rewrite"]),
        "require": st.lists(_CONSTRAINT, max_size=2),
        "exclude": st.lists(_CONSTRAINT, max_size=2),
        "categories": st.lists(st.sampled_from(["cs.CV", "astro-ph.GA", "no.such", "CS", " "]), max_size=2),
        "threshold": st.floats(-0.5, 3),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_BODY)
def test_any_search_body_gets_results_or_a_422_never_a_500(client, body):
    # The client re-raises server exceptions, so an unmapped error fails here too.
    r = client.post("/search", json=body)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        scores = [hit["score"] for hit in r.json()["results"]]
        assert scores == sorted(scores, reverse=True) and len(scores) <= body["k"]
    else:
        assert r.json()["detail"]


def test_unknown_feature_name_suggests_close_names(client):
    name = client.get("/features/0").json()["name"]
    r = client.post("/search", json={"query": "q", "steer": [{"feature": name + "x", "weight": 1}]})
    assert r.status_code == 422 and name in r.json()["suggestions"]


def test_feature_browsing(client):
    f = client.get("/features/3").json()
    assert set(f) >= {"id", "name", "description", "density", "trust", "top_documents", "family", "neighbors", "cooccurring"}
    word = f["name"].split()[0]
    hits = client.get("/features", params={"q": word, "limit": 5}).json()
    # The feature's own name word finds it, by name (score < 1) or by what the word stands for (score > 1).
    assert hits and 3 in {h["id"] for h in client.get("/features", params={"q": f["name"], "limit": 1}).json()}
    for h in hits:  # below 1 the words were only found in the feature's name or distinctive terms
        detail = client.get(f"/features/{h['id']}").json()
        assert h["score"] > 1 or word.lower() in " ".join([detail["name"], *detail["terms"]]).lower()
        # A match by the words says which term, and how its abstracts and the feature's overlap.
        m = h["matched_term"]
        assert (m is None) == (h["score"] < 1)
        assert m is None or inflection_key(m["term"]) == inflection_key(word.strip(",").lower())
        assert m is None or (0 < m["recall"] <= 1 and 0 < m["precision"] <= 1)
        assert h["concept_term"] == detail["concept_term"]  # what a steer of the hit would follow
    assert any(h["concept_term"] for h in hits)
    assert client.get("/features/99999").status_code == 404
    # An id or a count is written in digits: int's own parsing read "1_0" as 10 and "1.0" or "+1" as 1.
    for bad in ("/features/1_0", "/features/1.0", "/features/+1", "/families/1_0", "/families?offset=1.0"):
        r = client.get(bad)
        assert r.status_code == 422 and "digits" in r.json()["detail"], bad
    for negative in ("/features/-1", "/families/-1", "/features?offset=-1", "/families?offset=-1"):
        r = client.get(negative)
        assert r.status_code == 422 and "greater than or equal to 0" in r.json()["detail"], negative
    # The bounds reach the OpenAPI docs in JSON Schema's words, where clients and Swagger read them.
    params = {p["name"]: p["schema"] for p in client.get("/openapi.json").json()["paths"]["/features"]["get"]["parameters"]}
    assert (params["limit"]["minimum"], params["limit"]["maximum"], params["offset"]["minimum"]) == (1, 100, 0)
    assert client.get("/features", params={"q": ""}).status_code == 422
    for blank in ("  ", "\u200b"):
        r = client.get("/features", params={"q": blank}).json()
        assert r["detail"].startswith("q: must not be blank") and r["errors"] == [{"loc": "q", "msg": r["detail"][3:]}]
    # Every feature can be listed, a page of at most 100 at a time.
    pages = [client.get("/features", params={"limit": 100, "offset": off}) for off in range(0, 10_000, 100)]
    listed = [h["id"] for page in pages for h in page.json()]
    # Each page carries the count of all matches, which the pages add up to.
    assert {int(page.headers["x-total-count"]) for page in pages} == {len(listed)}
    assert len(listed) == len(set(listed)) > 200
    first = client.get("/features", params={"q": word, "limit": 1})
    assert int(first.headers["x-total-count"]) >= len(hits) > len(first.json()) == 1


def test_family_browsing(client):
    page = client.get("/families", params={"limit": 5}).json()
    sizes = [f["size"] for f in page["families"]]
    assert sizes == sorted(sizes, reverse=True) and page["total"] >= len(sizes)
    fam = page["families"][0]
    tree = client.get(f"/families/{fam['id']}").json()
    assert tree["tree"]["id"] == fam["parent"]["id"]
    steered = search(client, steer=[{"family": fam["name"], "weight": 1}])
    assert steered["steer"][0]["family"]["id"] == fam["id"]


def test_a_body_that_is_not_json_gets_a_422_saying_so(client):
    r = client.post("/search", content=b'{"query": "q", ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"].startswith("request: the body is not valid JSON")
    # Bodies that the JSON reader cannot even start on got a bare 400 "There was an error parsing the body".
    headers = {"content-type": "application/json"}
    r = client.post("/search", content=b'{"query": "caf\xe9"}', headers=headers)
    assert r.status_code == 422 and r.json()["detail"] == "request: the body is not UTF-8 text (byte 14)"
    r = client.post("/search", content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert r.status_code == 422 and "nests too deeply" in r.json()["detail"]
    assert client.get("/no/such/page").status_code == 404  # other HTTP errors keep their codes


def test_admin_needs_the_key(client):
    assert client.post("/index/rebuild").status_code == 401
    assert client.post("/index/rebuild", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.post("/index/rebuild", json={"corpus": "../../etc/passwd"}, headers=AUTH)
    assert r.status_code == 422 and "inside the data directory" in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == "corpus"
    r = client.post("/index/rebuild", json={"embeddings": "nope.npy"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == "embeddings"
    r = client.post("/index/rebuild", json={"corpus": "abs\u0000tracts.parquet"}, headers=AUTH)
    assert r.status_code == 422 and "not a usable file name" in r.json()["detail"]
    # A blank name is not "the configured corpus": it must not start a rebuild.
    for blank in ("", "  "):
        r = client.post("/index/rebuild", json={"corpus": blank}, headers=AUTH)
        assert r.status_code == 422 and r.json()["detail"].startswith("corpus: ")


def test_a_rebuild_from_misconfigured_files_is_refused_before_any_job(tmp_path, demo_index, embedder):
    (tmp_path / "afile").write_text("not a directory")
    settings = Settings(index_dir=demo_index, data_dir=tmp_path / "afile", corpus=tmp_path / "nope.parquet", admin_key=KEY)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        r = c.post("/index/rebuild", headers=AUTH)
        assert r.status_code == 422 and "SAE_SEARCH_CORPUS" in r.json()["detail"]
        r = c.post("/index/rebuild", json={"corpus": "c.parquet"}, headers=AUTH)
        assert r.status_code == 422 and "SAE_SEARCH_DATA_DIR" in r.json()["detail"]
        assert c.get("/health").json()["status"] == "ok"
    (tmp_path / "notes.md").write_text("# not a corpus")
    settings = Settings(index_dir=demo_index, data_dir=tmp_path, admin_key=KEY)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        r = c.post("/index/rebuild", json={"corpus": "notes.md"}, headers=AUTH)
        assert r.status_code == 422 and "unknown corpus format for 'notes.md'" in r.json()["detail"]  # no job made
    # Configured embeddings that are not there would have the model embed the corpus (over an hour at 115k).
    settings = Settings(index_dir=demo_index, data_dir=tmp_path, embeddings=tmp_path / "gone.npy", admin_key=KEY)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        r = c.post("/index/rebuild", headers=AUTH)
        assert r.status_code == 422 and "SAE_SEARCH_EMBEDDINGS" in r.json()["detail"]


def test_a_rebuild_keeps_the_index_options_and_another_corpus_is_read_whole(demo_index, tmp_path):
    import shutil

    from service.state import AppState

    shutil.copy(DEMO_CORPUS, tmp_path / "configured.parquet")
    shutil.copy(DEMO_CORPUS, tmp_path / "other.parquet")
    settings = Settings(index_dir=demo_index, data_dir=tmp_path, corpus=tmp_path / "configured.parquet")
    state = AppState(settings, embedder=None)
    same = state.rebuild_config(None, None)
    assert (same.k, same.latents, same.limit) == (16, 256, 300)  # demo_index's own build options
    named = state.rebuild_config("configured.parquet", None)  # the configured corpus by name is the same rebuild
    assert (named.k, named.latents, named.limit) == (16, 256, 300)
    other = state.rebuild_config("other.parquet", None)
    assert (other.k, other.latents, other.limit) == (16, 256, None)


def test_admin_disabled_without_a_key(demo_index, embedder):
    with TestClient(create_app(Settings(index_dir=demo_index), embedder=embedder)) as c:
        assert c.post("/index/rebuild", headers=AUTH).status_code == 403
    # No client can send a key of spaces (HTTP strips them), so it disables admin as no key does.
    with TestClient(create_app(Settings(index_dir=demo_index, admin_key="  "), embedder=embedder)) as c:
        assert c.post("/index/rebuild", headers={"Authorization": "Bearer   "}).status_code == 403
    with TestClient(create_app(Settings(index_dir=demo_index, admin_key=f" {KEY} "), embedder=embedder)) as c:
        assert c.post("/index/rebuild", json={"corpus": "../x"}, headers=AUTH).status_code == 422  # past the key


def test_a_name_the_file_system_refuses_is_a_422_or_a_503_never_a_crash(tmp_path, demo_index, embedder):
    too_long = "a" * 256
    settings = Settings(index_dir=demo_index, data_dir=tmp_path, corpus=tmp_path / too_long, admin_key=KEY)
    with TestClient(create_app(settings, embedder=embedder)) as c:
        for body in ({"corpus": too_long}, {"embeddings": too_long}, None):
            r = c.post("/index/rebuild", json=body, headers=AUTH)
            assert r.status_code == 422 and "File name too long" in r.json()["detail"], (body, r.text)
    with TestClient(create_app(Settings(index_dir=tmp_path / too_long), embedder=embedder)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and "File name too long" in r.json()["reason"]


def test_startup_clears_what_a_killed_build_left_beside_the_index(tmp_path, demo_index, embedder):
    import shutil

    index = tmp_path / "idx"
    shutil.copytree(demo_index, index)
    left = tmp_path / f".idx.tmp-{dead_pid()}-1234abcd"  # a server killed in a rebuild's write stage
    left.mkdir()
    (left / "codes.parquet").write_text("half written")
    with TestClient(create_app(Settings(index_dir=index), embedder=embedder)) as c:
        assert c.get("/health").status_code == 200 and not left.exists()


def test_without_an_index_health_and_search_answer_503_saying_why(tmp_path, embedder):
    with TestClient(create_app(Settings(index_dir=tmp_path / "none"), embedder=embedder)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "no_index" and r.json()["index"] is None
        assert "no manifest.json" in r.json()["reason"]
        assert c.head("/health").status_code == 503
        r = c.post("/search", json={"query": "galaxies"})
        assert r.status_code == 503 and "no manifest.json" in r.json()["detail"]


def test_a_damaged_index_is_not_served_and_health_says_why(tmp_path, demo_index, embedder):
    import shutil

    damaged = tmp_path / "idx"
    shutil.copytree(demo_index, damaged)
    (damaged / "dense.faiss").write_bytes(b"")
    with TestClient(create_app(Settings(index_dir=damaged), embedder=embedder)) as c:
        r = c.get("/health")
        assert r.status_code == 503 and "dense.faiss does not match its checksum" in r.json()["reason"]
        r = c.get("/features/1")
        assert r.status_code == 503 and "dense.faiss does not match its checksum" in r.json()["detail"]


def test_health_survives_an_unchecked_manifest_field(tmp_path, demo_index, embedder):
    import json
    import shutil

    copy = tmp_path / "idx"
    shutil.copytree(demo_index, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "created_at": 12345}))
    with TestClient(create_app(Settings(index_dir=copy, verify_checksums=False), embedder=embedder)) as c:
        r = c.get("/health")
        assert r.status_code == 200 and r.json()["index"]["built_at"] == ""


def test_the_loaded_index_is_kept_out_of_garbage_collections(client):
    import gc

    assert client.get("/health").status_code == 200
    data = client.app.state.sae.searcher.data
    tracked = {id(o) for o in gc.get_objects()}  # what a full collection walks; frozen objects are not among them
    assert not tracked & {id(data), id(data.corpus), id(data.corpus.ids), id(data.names.names)}


def test_rebuild_swaps_in_a_new_index_while_serving(client):
    before = client.get("/health").json()["index"]["built_at"]
    time.sleep(1.1)  # built_at has one-second resolution
    r = client.post("/index/rebuild", headers=AUTH)
    assert r.status_code == 202
    job = r.json()["job_id"]
    assert client.post("/index/rebuild", headers=AUTH).status_code == 409
    # Busy first: a second request's files are not even looked at while a rebuild writes.
    assert client.post("/index/rebuild", headers=AUTH, json={"corpus": "no-such.parquet"}).status_code == 409
    search(client)  # the old index keeps answering meanwhile
    deadline = time.time() + 300
    while (state := client.get(f"/jobs/{job}", headers=AUTH).json())["state"] not in ("succeeded", "failed"):
        assert time.time() < deadline
        time.sleep(0.5)
    assert state["state"] == "succeeded", state
    assert client.get("/health").json()["index"]["built_at"] != before
    assert client.get("/jobs/nope", headers=AUTH).status_code == 404


def test_searches_running_across_index_swaps_all_answer(client):
    import threading

    state, failures, answered, stop = client.app.state.sae, [], [], threading.Event()
    steer = [{"feature": search(client)["query_features"][0]["id"], "weight": -1}]

    def keep_searching():
        while not stop.is_set():
            r = client.post("/search", json={"query": "galaxy formation in the early universe", "steer": steer})
            (answered if r.status_code == 200 else failures).append(r.text)

    searchers = [threading.Thread(target=keep_searching) for _ in range(2)]
    for t in searchers:
        t.start()
    try:
        for _ in range(2):
            state.swap(state.searcher.data)
    finally:
        stop.set()
        for t in searchers:
            t.join(30)
    assert failures == [] and answered


def test_openapi_describes_the_error_body_each_route_can_give(client):
    paths = client.get("/openapi.json").json()["paths"]
    search = paths["/search"]["post"]["responses"]
    assert search["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")
    assert set(paths["/categories"]["get"]["responses"]) == {"200", "503"}
    assert "404" in paths["/features/{feature_id}"]["get"]["responses"]


def test_a_rebuild_cut_short_by_a_shutdown_is_logged(demo_index, embedder, caplog):
    import threading

    release = threading.Event()
    with TestClient(create_app(Settings(index_dir=demo_index), embedder=embedder)) as c:
        job = c.app.state.sae.jobs.submit(lambda on_stage: (on_stage("sae"), release.wait(10)))
    release.set()
    abandoned = [r.getMessage() for r in caplog.records if "rebuild abandoned at shutdown" in r.getMessage()]
    assert abandoned == [f"rebuild abandoned at shutdown job_id={job.job_id} stage=sae; start it again"]
