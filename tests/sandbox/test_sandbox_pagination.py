"""Lists page like Qlik's: absolute next links, opaque cursors, limits, filters, every entry once."""

from __future__ import annotations

from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
from fixtures_sandbox import Tenant

from qlikm2m.sandbox import Sandbox


@pytest.fixture
def big(make_sandbox: object) -> Tenant:
    sandbox: Sandbox = make_sandbox(items=2345, users=45, spaces=25)  # type: ignore[operator]
    return Tenant(sandbox)


def test_every_item_exactly_once_following_next_links(big: Tenant) -> None:
    token = big.token()

    items = big.collect("/api/v1/items", token, {"limit": "100"})

    ids = [item["id"] for item in items]
    assert len(ids) == 2345
    assert len(set(ids)) == 2345
    assert big.sandbox.count("GET /api/v1/items") == 24


def test_next_links_are_absolute_keep_the_query_and_carry_an_opaque_cursor(big: Tenant) -> None:
    token = big.token()
    params = {"limit": "7", "resourceType": "app", "name": "sales"}
    page = big.get("/api/v1/items", token, params=params).json()

    assert page["links"]["self"]["href"].startswith(f"{big.url}/api/v1/items?")
    following = page["links"]["next"]["href"]
    parts = urlsplit(following)
    assert f"{parts.scheme}://{parts.netloc}" == big.url
    query = parse_qs(parts.query)
    assert {k: v[0] for k, v in query.items() if k != "next"} == params
    cursor = query["next"][0]
    assert not cursor.isdigit()  # an opaque cursor, not an offset a client could compute
    assert big.get("/api/v1/items", token, params={**params, "next": "7"}).status_code == 400

    second = big.get(following, token).json()
    assert {i["id"] for i in second["data"]}.isdisjoint({i["id"] for i in page["data"]})
    assert second["links"]["self"]["href"] == following


def test_the_last_page_has_no_next_link(make_sandbox: object) -> None:
    tenant = Tenant(make_sandbox(items=20))  # type: ignore[operator]
    token = tenant.token()

    exact = tenant.get("/api/v1/items", token, params={"limit": "20"}).json()
    empty = tenant.get("/api/v1/items", token, params={"name": "no such item"}).json()

    assert len(exact["data"]) == 20
    assert "next" not in exact["links"]
    assert empty["data"] == []
    assert "next" not in empty["links"]


@pytest.mark.parametrize("cursor", ["MTAw", "100", "garbage!!", ""])
def test_forged_cursors_are_refused(big: Tenant, cursor: str) -> None:
    response = big.get("/api/v1/items", big.token(), params={"next": cursor})

    if cursor == "":
        assert response.status_code == 200
    else:
        assert response.status_code == 400
        assert "cursor" in response.json()["errors"][0]["detail"]


def test_a_cursor_of_one_list_is_refused_by_another(big: Tenant) -> None:
    token = big.token()
    users_next = big.get("/api/v1/users", token, params={"limit": "5"}).json()["links"]["next"]
    cursor = parse_qs(urlsplit(users_next["href"]).query)["next"][0]

    assert big.get("/api/v1/items", token, params={"next": cursor}).status_code == 400


@pytest.mark.parametrize(
    ("path", "default"),
    [("/api/v1/items", 10), ("/api/v1/users", 20), ("/api/v1/spaces", 10)],
)
def test_default_limits(big: Tenant, path: str, default: int) -> None:
    assert len(big.get(path, big.token()).json()["data"]) == default


@pytest.mark.parametrize("path", ["/api/v1/items", "/api/v1/users", "/api/v1/spaces"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
def test_limits_out_of_bounds_are_400(big: Tenant, path: str, limit: str) -> None:
    response = big.get(path, big.token(), params={"limit": limit})

    assert response.status_code == 400
    assert "limit" in response.json()["errors"][0]["detail"]


def test_limit_100_is_accepted(big: Tenant) -> None:
    assert len(big.get("/api/v1/items", big.token(), params={"limit": "100"}).json()["data"]) == 100


def test_every_user_and_space_once(big: Tenant) -> None:
    token = big.token()

    users = big.collect("/api/v1/users", token, {"limit": "7"})
    spaces = big.collect("/api/v1/spaces", token, {"limit": "4"})

    assert len({u["id"] for u in users}) == len(users) == 45 + 1  # seeded + the client's bot
    assert len({s["id"] for s in spaces}) == len(spaces) == 25
    page = big.get("/api/v1/spaces", token, params={"limit": "4"}).json()
    assert page["meta"]["count"] == 25
    assert (
        big.get("/api/v1/users", token, params={"totalResults": "true"}).json()["totalResults"]
        == 46
    )


def test_space_filters(big: Tenant) -> None:
    token = big.token()

    managed = big.collect("/api/v1/spaces", token, {"type": "managed"})
    two_types = big.collect("/api/v1/spaces", token, {"type": "managed,data"})
    named = big.collect("/api/v1/spaces", token, {"name": "FINANCE"})

    assert managed
    assert {s["type"] for s in managed} == {"managed"}
    assert {s["type"] for s in two_types} == {"managed", "data"}
    assert named
    assert all("finance" in s["name"].lower() for s in named)
    assert big.get("/api/v1/spaces", token, params={"type": "managed"}).json()["meta"][
        "count"
    ] == len(managed)


def test_item_filters_partition_the_items(big: Tenant) -> None:
    token = big.token()
    everything = big.collect("/api/v1/items", token, {"limit": "100"})
    by_type = Counter(item["resourceType"] for item in everything)

    apps = big.collect("/api/v1/items", token, {"resourceType": "app", "limit": "100"})
    apps_and_notes = big.collect(
        "/api/v1/items", token, {"resourceType": "app,note", "limit": "100"}
    )

    assert len(apps) == by_type["app"] > 0
    assert {a["resourceType"] for a in apps} == {"app"}
    assert len(apps_and_notes) == by_type["app"] + by_type["note"]


def test_item_space_filters_including_personal(big: Tenant) -> None:
    token = big.token()
    everything = big.collect("/api/v1/items", token, {"limit": "100"})
    space_id = next(i["spaceId"] for i in everything if "spaceId" in i)

    in_space = big.collect("/api/v1/items", token, {"spaceId": space_id, "limit": "100"})
    personal = big.collect("/api/v1/items", token, {"spaceId": "personal", "limit": "100"})
    personal_type = big.collect("/api/v1/items", token, {"spaceType": "personal", "limit": "100"})

    assert in_space
    assert all(i["spaceId"] == space_id for i in in_space)
    assert len(in_space) == sum(1 for i in everything if i.get("spaceId") == space_id)
    assert personal
    assert all("spaceId" not in i for i in personal)
    assert len(personal) == sum(1 for i in everything if "spaceId" not in i)
    assert personal_type == personal


def test_item_name_filter_is_a_case_insensitive_substring(big: Tenant) -> None:
    token = big.token()

    found = big.collect("/api/v1/items", token, {"name": "sUPPLY cHAIN app", "limit": "100"})

    assert found
    assert all("supply chain app" in i["name"].lower() for i in found)


def test_resource_id_lookup_needs_a_resource_type(big: Tenant) -> None:
    token = big.token()
    app_id = big.sandbox.app_ids()[3]

    found = big.get(
        "/api/v1/items", token, params={"resourceType": "app", "resourceId": app_id}
    ).json()["data"]
    refused = big.get("/api/v1/items", token, params={"resourceId": app_id})

    assert [i["resourceId"] for i in found] == [app_id]
    assert refused.status_code == 400


def test_resource_ids_select_those_items_only(big: Tenant) -> None:
    token = big.token()
    wanted = big.sandbox.app_ids()[5:25]

    found = big.collect(
        "/api/v1/items",
        token,
        {"resourceType": "app", "resourceIds": ",".join([*wanted, "no-such-app"]), "limit": "7"},
    )

    assert sorted(i["resourceId"] for i in found) == sorted(wanted)


def test_resource_ids_need_a_resource_type_and_at_most_a_hundred(big: Tenant) -> None:
    token = big.token()
    app_id = big.sandbox.app_ids()[0]
    hundred = [app_id, *(f"app-{k}" for k in range(99))]

    untyped = big.get("/api/v1/items", token, params={"resourceIds": app_id})
    at_most = big.get(
        "/api/v1/items", token, params={"resourceType": "app", "resourceIds": ",".join(hundred)}
    )
    too_many = big.get(
        "/api/v1/items",
        token,
        params={"resourceType": "app", "resourceIds": ",".join([*hundred, "one-more"])},
    )

    assert untyped.status_code == 400
    assert [i["resourceId"] for i in at_most.json()["data"]] == [app_id]
    assert too_many.status_code == 400
    assert "100" in too_many.json()["errors"][0]["detail"] + too_many.json()["errors"][0]["title"]


@pytest.mark.slow
def test_paging_through_100000_items(make_sandbox: object) -> None:
    # Plain HTTP: this measures the sandbox, not TLS in the client (HTTPS is covered above).
    tenant = Tenant(make_sandbox(items=100_000, tls=False))  # type: ignore[operator]

    ids = tenant.collect("/api/v1/items", tenant.token(), {"limit": "100"}, field="id")

    assert len(set(ids)) == len(ids) == 100_000
    assert tenant.sandbox.connections == 1  # one keep-alive connection for 1,000 pages
