"""The tenant facade in-process against the sandbox: paths, the one 401 re-mint, pages, refusals."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import make_runtime

from qlikm2m.client import QlikClient, client_from_runtime
from qlikm2m.errors import ApiError, AuthError, UsageError
from qlikm2m.sandbox import Sandbox

TOKEN = "POST /oauth/token"
ITEMS = "GET /api/v1/items"


@pytest.fixture
def client(cli_env: dict[str, str]) -> Iterator[QlikClient]:
    with client_from_runtime(make_runtime(cli_env)) as built:
        yield built


@pytest.mark.parametrize(
    "path", ["/api/v1/items", "api/v1/items", "v1/items", "  v1/items ", "API/v1/items"]
)
def test_every_path_form_names_the_same_endpoint(client: QlikClient, path: str) -> None:
    expected = client.settings.server_url + "/api/v1/items"
    assert client.url_for(path).lower() == expected.lower()


def test_an_absolute_url_on_the_tenant_is_kept_as_given(client: QlikClient) -> None:
    url = client.settings.server_url + "/api/v1/items?limit=5"
    assert client.url_for(url) == url


@pytest.mark.parametrize(
    "url", ["https://elsewhere.example.com/api/v1/items", "http://127.0.0.1:9/api/v1/items"]
)
def test_an_absolute_url_elsewhere_is_refused_before_any_request(
    client: QlikClient, sandbox: Sandbox, url: str
) -> None:
    with pytest.raises(UsageError, match="Refusing to send the token"):
        client.request("GET", url)
    assert sandbox.count(TOKEN) == 0  # refused before a token was even asked for


def test_an_empty_path_is_a_usage_error(client: QlikClient) -> None:
    with pytest.raises(UsageError, match="empty"):
        client.url_for("   ")


def test_a_cached_token_refused_with_401_is_replaced_once(
    cli_env: dict[str, str], sandbox: Sandbox
) -> None:
    with client_from_runtime(make_runtime(cli_env)) as first:
        first.get_json("v1/users/me")  # mints and caches
    sandbox.revoke_all()
    with client_from_runtime(make_runtime(cli_env)) as second:
        me = second.get_json("v1/users/me")
        assert second.tokens.last is not None
        assert second.tokens.last.origin == "minted"
    assert me["subject"].startswith("qlikbot")
    assert sandbox.count(TOKEN) == 2
    assert sandbox.count("GET /api/v1/users/me") == 3  # ok, 401 with the revoked one, ok


def test_a_fresh_token_refused_with_401_is_an_auth_error_without_a_loop(
    client: QlikClient, sandbox: Sandbox
) -> None:
    sandbox.force(status=401, body={"errors": [{"title": "Unauthorized"}]}, match=ITEMS, times=None)
    with pytest.raises(AuthError) as caught:
        client.get_json("v1/items")
    assert "scopes" in (caught.value.hint or "")  # the OAuth client's hint, not the API key's
    assert sandbox.count(TOKEN) == 1  # a freshly minted token is not re-minted
    assert sandbox.count(ITEMS) == 1


def test_a_refused_api_key_says_so(sandbox: Sandbox, cli_env: dict[str, str]) -> None:
    env = {k: v for k, v in cli_env.items() if not k.startswith("QLIK_CLIENT")}
    env["QLIK_API_KEY"] = "not-the-api-key-0123456789"
    with client_from_runtime(make_runtime(env)) as client, pytest.raises(AuthError) as caught:
        client.get_json("v1/users/me")
    assert "API key" in (caught.value.hint or "")
    assert sandbox.count(TOKEN) == 0  # an API key is used as it is


def test_check_false_returns_the_error_answer_instead_of_raising(
    client: QlikClient, sandbox: Sandbox
) -> None:
    sandbox.force(status=404, body={"errors": [{"title": "Not found"}]}, match=ITEMS)
    response = client.request("GET", "v1/items", check=False)
    assert response.status == 404


def test_pages_are_followed_as_given_and_items_streamed_in_order(
    client: QlikClient, sandbox: Sandbox
) -> None:
    sandbox.force(
        body={"data": [{"id": "a"}], "links": {"next": {"href": "/api/v1/items-2?next=x"}}},
        match=ITEMS,
    )
    sandbox.force(
        body={"data": [{"id": "b"}, {"id": "c"}], "links": {"next": {"href": "items-3"}}},
        match="GET /api/v1/items-2",
    )
    sandbox.force(body={"data": [{"id": "d"}], "links": {}}, match="GET /api/v1/items-3")
    seen: list[int] = []
    pages = list(client.iter_pages("v1/items", on_response=lambda r: seen.append(r.status)))
    assert [item["id"] for page in pages for item in page["data"]] == ["a", "b", "c", "d"]
    assert seen == [200, 200, 200]


def test_a_next_page_on_another_origin_is_refused_without_sending_the_token(
    client: QlikClient, sandbox: Sandbox
) -> None:
    sandbox.force(
        body={"data": [{"id": "a"}], "links": {"next": {"href": "https://127.0.0.2:9/p2"}}},
        match=ITEMS,
    )
    pages = client.paginate("v1/items")
    assert next(pages) == {"id": "a"}
    with pytest.raises(ApiError, match="not on the tenant"):
        next(pages)


def test_pagination_links_that_loop_are_an_error_not_an_endless_list(
    client: QlikClient, sandbox: Sandbox
) -> None:
    page = {"data": [{"id": "a"}], "links": {"next": {"href": "/api/v1/items-loop"}}}
    sandbox.force(body=page, match=ITEMS)
    sandbox.force(body=page, match="GET /api/v1/items-loop", times=None)
    with pytest.raises(ApiError, match="points back to a page already read"):
        list(client.paginate("v1/items"))
    assert sandbox.count("GET /api/v1/items-loop") == 1  # each page read once, then stop


def test_paginating_something_that_is_not_a_list_is_an_api_error(
    client: QlikClient, sandbox: Sandbox
) -> None:
    with pytest.raises(ApiError, match='no "data" array'):
        list(client.paginate("v1/users/me"))
