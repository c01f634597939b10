import logging

from fastapi import FastAPI
from fastapi.testclient import TestClient

from indexer.errors import InvalidArgument, SaeSearchError, located
from service.errors import install


def _app(exc: Exception) -> TestClient:
    app = FastAPI()
    install(app)

    @app.post("/do")
    def do() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


def test_invalid_input_is_a_422_that_names_the_field():
    r = _app(located("steer.0", InvalidArgument("must not be blank"))).post("/do")
    assert r.status_code == 422 and r.json()["errors"] == [{"loc": "steer.0", "msg": "must not be blank"}]


def test_a_domain_error_no_status_stands_for_is_a_500_that_says_why_and_is_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        r = _app(SaeSearchError("the codes disagree with the manifest")).post("/do")
    assert r.status_code == 500 and r.json() == {"detail": "the codes disagree with the manifest"}
    assert [rec.exc_info[0] for rec in caplog.records] == [SaeSearchError]


def test_any_other_exception_is_a_500_without_its_message(caplog):
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        r = _app(KeyError("secret path /srv/x")).post("/do")
    assert r.status_code == 500 and "secret" not in r.text and caplog.records
