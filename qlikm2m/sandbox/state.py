"""The sandbox tenant's data: clients, users, spaces, items, tokens, reloads and rate-limit windows.

Items are not stored: item *n* is computed from *n*, so hundreds of thousands cost no memory and
any page is built by scanning forward from the cursor's position.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from qlikm2m.sandbox.config import ClientSpec, SandboxConfig
from qlikm2m.sandbox.credentials import CredentialRegistry
from qlikm2m.sandbox.storage import ASSIGNABLE_ROLES, Content, DeliveredApp, Stores
from qlikm2m.sandbox.wire import iso, iso_date, json_text

# Fixed so that seeded ids are the same on every run: docs and scripts can name an app.
SEED_EPOCH = 1_704_067_200.0  # 2024-01-01T00:00:00Z
ITEM_ID_PREFIX = "65a1f0c0" + "5d1b2e3f40"
SPACE_ID_PREFIX = "65a1f0c0" + "aa11bb22cc"
RELOAD_ID_PREFIX = "66b0c3a1" + "7e8f9a0b1c"
RESOURCE_ID_PREFIX = "65a1f0c0" + "0f0e0d0c0b"
APP_ID_PREFIX = "5f0c9a1e-3c2d-4b8e-9f1a-"
ITEM_TYPES = ("app", "dataset", "app", "automation", "app", "note")
# A dead (expired or revoked) token is remembered this long, so a client still holding one hears
# "expired" or "revoked" rather than "unknown"; then it is forgotten, so a sandbox left running for
# days does not grow with every token it ever minted.
DEAD_TOKEN_MEMORY = 3600.0
TOKEN_SWEEP_FLOOR = 1024
TYPE_LABELS = {"app": "app", "dataset": "dataset", "automation": "automation", "note": "note"}
NAME_WORDS = ("Sales", "Finance", "Marketing", "Operations", "Supply chain", "HR", "Customer")
SPACE_TYPES = ("shared", "managed", "data")
ITEM_ACTIONS = ["read", "update", "delete", "reload", "publish"]
_ITEM_ACTIONS_JSON = json.dumps(ITEM_ACTIONS, separators=(",", ":"))


def _stable_id(kind: str, n: int | str, length: int = 32) -> str:
    digest = hashlib.sha256(f"qlikm2m-sandbox:{kind}:{n}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().replace("-", "x").replace("_", "y")[:length]


def app_id_for(index: int) -> str:
    return f"{APP_ID_PREFIX}{index:012x}"


def item_id_for(index: int) -> str:
    return f"{ITEM_ID_PREFIX}{index:06x}"


def _index_from(value: str, prefix: str, width: int) -> int | None:
    tail = value[len(prefix) :]
    if not value.startswith(prefix) or len(tail) != width:
        return None
    try:
        return int(tail, 16)
    except ValueError:
        return None


@dataclass
class Token:
    value: str
    client_id: str
    user_id: str
    scope: str
    issued_at: float
    expires_at: float
    revoked_at: float | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def live(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at

    def dead_since(self) -> float:
        return self.expires_at if self.revoked_at is None else min(self.expires_at, self.revoked_at)


@dataclass(frozen=True)
class RefreshGrant:
    client_id: str
    user_id: str
    scope: str


@dataclass
class Reload:
    id: str
    app_id: str
    user_id: str
    partial: bool
    created_at: float
    ends: str  # the end status once it has run: SUCCEEDED, FAILED or EXCEEDED_LIMIT
    canceled_at: float | None = None
    weight: int = 1
    variables: dict[str, str] | None = None


@dataclass(frozen=True)
class ItemFilter:
    resource_types: frozenset[str] | None = None
    space_ids: frozenset[str] | None = None  # "personal" selects items outside any space
    space_types: frozenset[str] | None = None
    name: str | None = None  # case-insensitive substring
    resource_id: str | None = None
    resource_ids: frozenset[str] | None = None  # items.json resourceIds: any of these


@dataclass
class RateWindow:
    started: float
    count: int = 0


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    connections: int = 0


class TenantState:
    """All mutable sandbox data behind one lock; handlers call these methods from many threads."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.tenant_id = _stable_id("tenant", config.tenant_name)
        self.clients: dict[str, ClientSpec] = {c.client_id: c for c in config.clients}
        # Secrets and public keys change at run time (rotation); the seeded secret is the first.
        self.credentials = CredentialRegistry(config.clients, self.now, SEED_EPOCH)
        self.users: dict[str, dict[str, Any]] = {}
        self.users_by_subject: dict[str, str] = {}
        self.bot_user_ids: dict[str, str] = {}
        self._seed_users()
        self.users_sorted = sorted(self.users.values(), key=lambda u: (u["name"].lower(), u["id"]))
        human = [u for u in self.users.values() if "clientId" not in u]
        self.api_key_user_id = (human[0] if human else next(iter(self.users.values())))["id"]
        self.spaces = [self._space(n) for n in range(config.spaces)]
        self.space_by_id = {s["id"]: s for s in self.spaces}
        self.seeded_items = config.items
        seeded_apps = {app_id_for(n) for n in range(config.items) if ITEM_TYPES[n % 6] == "app"}
        # An app named to fail that is not among the seeded ones is added, so any id can be named.
        self.reload_endings = {
            **{app: "FAILED" for app in config.fail_apps},
            **{app: "EXCEEDED_LIMIT" for app in config.exceed_limit_apps},
        }
        self.extra_apps = [a for a in self.reload_endings if a not in seeded_apps]
        self.extra_app_index = {a: config.items + k for k, a in enumerate(self.extra_apps)}
        self.tokens: dict[str, Token] = {}
        self._sweep_tokens_at = TOKEN_SWEEP_FLOOR
        self.refresh_grants: dict[str, RefreshGrant] = {}
        self.reloads: dict[str, Reload] = {}
        self.reloads_by_app: dict[str, list[str]] = {}
        self.reload_counter = 0
        self.rate_windows: dict[tuple[int, str], RateWindow] = {}
        self.stats = Stats()
        # Uploads, imported and published apps, data files, created spaces' assignments.
        self.stores = Stores(lock=self.lock)

    def close(self) -> None:
        """Remove the files clients uploaded."""
        with self.lock:
            self.stores.close()

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.config.clock() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        with self.lock:
            self.clock_offset += seconds
            return self.now()

    # -- users and tenant ---------------------------------------------------------------------
    def _seed_users(self) -> None:
        created = iso(SEED_EPOCH)
        for n in range(self.config.users):
            admin = n == 0
            user: dict[str, Any] = {
                "id": _stable_id("user", n),
                "tenantId": self.tenant_id,
                "name": f"Sandbox User {n + 1}",
                "email": f"user{n + 1}@sandbox.invalid",
                "subject": f"auth0|sandbox-user-{n + 1}",
                "status": "active",
                "createdAt": created,
                "lastUpdatedAt": created,
                "locale": "en",
                "zoneinfo": "UTC",
                "assignedRoles": [self._role("TenantAdmin" if admin else "Consumer", admin)],
                "assignedGroups": [],
                "assignedScopes": ["user_default"],
            }
            self._add_user(user)
        for client in self.clients.values():
            bot: dict[str, Any] = {
                "id": _stable_id("bot", client.client_id),
                "tenantId": self.tenant_id,
                "clientId": client.client_id,
                "name": client.name,
                "subject": f"qlikbot\\{client.client_id}",
                "status": "active",
                "createdAt": created,
                "lastUpdatedAt": created,
                "assignedRoles": [self._role("TenantAdmin", True)],
                "assignedGroups": [],
                "assignedScopes": list(client.scopes),
            }
            self._add_user(bot)
            self.bot_user_ids[client.client_id] = str(bot["id"])

    @staticmethod
    def _role(name: str, admin: bool) -> dict[str, str]:
        return {
            "id": _stable_id("role", name, 24),
            "name": name,
            "type": "default",
            "level": "admin" if admin else "user",
        }

    def _add_user(self, user: dict[str, Any]) -> None:
        self.users[user["id"]] = user
        self.users_by_subject[user["subject"]] = user["id"]

    def tenant(self, base_url: str) -> dict[str, Any]:
        host = base_url.split("://", 1)[-1]
        return {
            "id": self.tenant_id,
            "name": self.config.tenant_name,
            "hostnames": [host],
            "status": "active",
            "region": "sandbox",
            "datacenter": "local",
            "created": iso_date(SEED_EPOCH),
            "lastUpdated": iso_date(SEED_EPOCH),
            "createdByUser": self.api_key_user_id,
            "enableAnalyticCreation": False,
            "links": {"self": {"href": f"{base_url}/api/v1/tenants/{self.tenant_id}"}},
        }

    def user_view(self, user: dict[str, Any], base_url: str) -> dict[str, Any]:
        return {**user, "links": {"self": {"href": f"{base_url}/api/v1/users/{user['id']}"}}}

    # -- spaces -------------------------------------------------------------------------------
    def _space(self, n: int) -> dict[str, Any]:
        kind = SPACE_TYPES[n % 3]
        created = iso(SEED_EPOCH + n * 3600)
        owner = self.api_key_user_id
        return {
            "id": f"{SPACE_ID_PREFIX}{n:06x}",
            "name": f"{NAME_WORDS[n % len(NAME_WORDS)]} {kind} space {n + 1}",
            "type": kind,
            "tenantId": self.tenant_id,
            "ownerId": owner,
            "createdBy": owner,
            "createdAt": created,
            "updatedAt": created,
            "description": f"Seeded {kind} space",
            "meta": {
                "actions": ["create", "read", "update", "delete"],
                "roles": [],
                "assignableRoles": list(ASSIGNABLE_ROLES[kind]),
            },
        }

    def space_view(self, space: dict[str, Any], base_url: str) -> dict[str, Any]:
        href = f"{base_url}/api/v1/spaces/{space['id']}"
        links = {"self": {"href": href}, "assignments": {"href": f"{href}/assignments"}}
        return {**space, "links": links}

    # -- items (computed, not stored) ----------------------------------------------------------
    @property
    def item_count(self) -> int:
        return self.seeded_items + len(self.extra_apps)

    def _item_kind(self, n: int) -> str:
        return "app" if n >= self.seeded_items else ITEM_TYPES[n % 6]

    def _item_space(self, n: int) -> dict[str, Any] | None:
        # Every (spaces+1)th item lives in its owner's personal space. Seeded spaces only: spaces
        # created later must not move seeded items.
        seeded = self.config.spaces
        slot = n % (seeded + 1)
        return self.spaces[slot] if slot < seeded else None

    def _item_name(self, n: int) -> str:
        if n >= self.seeded_items:
            ending = self.reload_endings[self.extra_apps[n - self.seeded_items]]
            return f"{'Over-limit' if ending == 'EXCEEDED_LIMIT' else 'Failing'} app {n + 1}"
        return f"{NAME_WORDS[n % len(NAME_WORDS)]} {TYPE_LABELS[self._item_kind(n)]} {n + 1}"

    def _resource_id(self, n: int) -> str:
        if n >= self.seeded_items:
            return self.extra_apps[n - self.seeded_items]
        if self._item_kind(n) == "app":
            return app_id_for(n)
        return f"{RESOURCE_ID_PREFIX}{n:06x}"

    def item_index(self, item_id: str) -> int | None:
        n = _index_from(item_id, ITEM_ID_PREFIX, 6)
        if n is not None and n >= self.item_count:
            delivered = self._delivered(n)
            return n if delivered is not None else None
        if n is not None and self._resource_id(n) in self.stores.deleted_seeded:
            return None
        return n if n is not None and n < self.item_count else None

    def _delivered(self, n: int) -> DeliveredApp | None:
        k = n - self.item_count
        with self.lock:
            if not 0 <= k < len(self.stores.apps):
                return None
            app = self.stores.apps[k]
            return None if app.deleted else app

    def delivered_index(self, app_id: str) -> int | None:
        with self.lock:
            position = self.stores.app_position.get(app_id)
            if position is None or self.stores.apps[position].deleted:
                return None
            return self.item_count + position

    def app_index(self, app_id: str) -> int | None:
        delivered = self.delivered_index(app_id)
        if delivered is not None:
            return delivered
        if app_id in self.stores.deleted_seeded:
            return None
        if app_id in self.extra_app_index:
            return self.extra_app_index[app_id]
        n = _index_from(app_id, APP_ID_PREFIX, 12)
        if n is None or n >= self.seeded_items or self._item_kind(n) != "app":
            return None
        return n

    def item_matches(self, n: int, wanted: ItemFilter) -> bool:
        if wanted.resource_types is not None and self._item_kind(n) not in wanted.resource_types:
            return False
        if wanted.space_ids is not None or wanted.space_types is not None:
            space = self._item_space(n)
            space_id = space["id"] if space else "personal"
            space_type = space["type"] if space else "personal"
            if wanted.space_ids is not None and space_id not in wanted.space_ids:
                return False
            if wanted.space_types is not None and space_type not in wanted.space_types:
                return False
        if wanted.name is not None and wanted.name.lower() not in self._item_name(n).lower():
            return False
        if wanted.resource_ids is not None and self._resource_id(n) not in wanted.resource_ids:
            return False
        return wanted.resource_id is None or self._resource_id(n) == wanted.resource_id

    def _resource_index(self, resource_id: str) -> int | None:
        """The item number of a seeded or delivered resource id, or None."""
        app = self.app_index(resource_id)
        if app is not None:
            return app
        n = _index_from(resource_id, RESOURCE_ID_PREFIX, 6)
        return n if n is not None and n < self.seeded_items else None

    def scan_items(self, start: int, wanted: ItemFilter) -> Iterator[int]:
        deleted = self.stores.deleted_seeded
        if wanted.resource_ids is not None:
            # A lookup by ids (the reload wait's tick) costs the ids asked for, not the tenant's size.
            found = {self._resource_index(resource_id) for resource_id in wanted.resource_ids}
            for n in sorted(k for k in found if k is not None and k >= start):
                if n >= self.item_count:
                    app = self._delivered(n)
                    if app is not None and self._delivered_matches(app, wanted):
                        yield n
                elif self.item_matches(n, wanted) and self._resource_id(n) not in deleted:
                    yield n
            return
        for n in range(start, self.item_count):
            if self.item_matches(n, wanted) and not (deleted and self._resource_id(n) in deleted):
                yield n
        with self.lock:
            delivered = list(enumerate(self.stores.apps))
        for k, app in delivered:
            n = self.item_count + k
            if n >= start and not app.deleted and self._delivered_matches(app, wanted):
                yield n

    def _delivered_matches(self, app: DeliveredApp, wanted: ItemFilter) -> bool:
        if wanted.resource_types is not None and "app" not in wanted.resource_types:
            return False
        space = self.space_by_id.get(app.space_id) if app.space_id else None
        if wanted.space_ids is not None and (app.space_id or "personal") not in wanted.space_ids:
            return False
        if wanted.space_types is not None and (
            (space["type"] if space else "personal") not in wanted.space_types
        ):
            return False
        if wanted.name is not None and wanted.name.lower() not in app.name.lower():
            return False
        if wanted.resource_ids is not None and app.id not in wanted.resource_ids:
            return False
        return wanted.resource_id is None or app.id == wanted.resource_id

    def item(self, n: int, base_url: str) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.item_json(n, json_text(base_url)))
        return parsed

    def item_json(self, n: int, base: str) -> str:
        """Item *n* as JSON text; `base` is the JSON-escaped base URL.

        Written as a template rather than a dict for json.dumps: paging 100,000 items is
        dominated by this function.
        """
        if n >= self.item_count:
            return self._delivered_item_json(n, base)
        kind = self._item_kind(n)
        space = self._item_space(n)
        resource_id = json_text(self._resource_id(n))
        owner = self.api_key_user_id
        created = iso(SEED_EPOCH + n * 37)
        item_id = item_id_for(n)
        name = json_text(self._item_name(n))
        space_field = f',"spaceId":"{space["id"]}"' if space is not None else ""
        extra_attributes = space_field
        extra_fields = space_field
        links = f'"self":{{"href":"{base}/api/v1/items/{item_id}"}}'
        if kind == "app":
            links += f',"open":{{"href":"{base}/sense/app/{resource_id}"}}'
            extra_attributes += ',"usage":"ANALYTICS"'
            last = self.last_finished_reload(self._resource_id(n))
            if last is not None:
                status, ended = last
                outcome = "ok" if status == "SUCCEEDED" else "failed"
                extra_fields += (
                    f',"resourceReloadStatus":"{outcome}","resourceReloadEndTime":"{iso(ended)}"'
                )
                extra_attributes += f',"lastReloadTime":"{iso(ended)}"'
        return (
            f'{{"id":"{item_id}","name":"{name}","description":"","tenantId":"{self.tenant_id}",'
            f'"ownerId":"{owner}","creatorId":"{owner}","updaterId":"{owner}",'
            f'"resourceType":"{kind}","resourceId":"{resource_id}","resourceSubType":"",'
            f'"resourceCreatedAt":"{created}","resourceUpdatedAt":"{created}",'
            f'"createdAt":"{created}","updatedAt":"{created}","isFavorited":false,'
            f'"actions":{_ITEM_ACTIONS_JSON},"collectionIds":[],'
            f'"resourceAttributes":{{"id":"{resource_id}","name":"{name}","owner":"{owner}"'
            f"{extra_attributes}}},"
            f'"resourceCustomAttributes":{{}},'
            f'"meta":{{"isFavorited":false,"actions":{_ITEM_ACTIONS_JSON},"tags":[],'
            f'"collections":[]}},"links":{{{links}}}{extra_fields}}}'
        )

    def _delivered_item_json(self, n: int, base: str) -> str:
        app = self._delivered(n)
        assert app is not None
        owner = app.owner_id
        created, updated = iso(app.created_at), iso(app.modified_at or app.created_at)
        item_id = item_id_for(n)
        attributes: dict[str, Any] = {"id": app.id, "name": app.name, "owner": owner}
        if app.space_id:
            attributes["spaceId"] = app.space_id
        attributes["usage"] = "ANALYTICS"
        if app.publish_time is not None:
            attributes["publishTime"] = iso(app.publish_time)
            attributes["originAppId"] = app.origin_app_id
        item: dict[str, Any] = {
            "id": item_id, "name": app.name, "description": app.description,
            "tenantId": self.tenant_id, "ownerId": owner, "creatorId": owner, "updaterId": owner,
            "resourceType": "app", "resourceId": app.id, "resourceSubType": "",
            "resourceCreatedAt": created, "resourceUpdatedAt": updated,
            "createdAt": created, "updatedAt": updated, "isFavorited": False,
            "actions": ITEM_ACTIONS, "collectionIds": [],
            "resourceAttributes": attributes, "resourceCustomAttributes": {},
            "meta": {"isFavorited": False, "actions": ITEM_ACTIONS, "tags": [], "collections": []},
            "links": {
                "self": {"href": f"{base}/api/v1/items/{item_id}"},
                "open": {"href": f"{base}/sense/app/{app.id}"},
            },
        }  # fmt: skip
        if app.space_id:
            item["spaceId"] = app.space_id
        last = self.last_finished_reload(app.id)
        if last is not None:
            item["resourceReloadStatus"] = "ok" if last[0] == "SUCCEEDED" else "failed"
            item["resourceReloadEndTime"] = iso(last[1])
            attributes["lastReloadTime"] = iso(last[1])
        return json.dumps(item, separators=(",", ":"))

    def app_source(self, app_id: str) -> tuple[str, str | None, Content] | None:
        """(name, space id, content) of any live app, seeded or delivered; None if unknown."""
        with self.lock:
            delivered = self.stores.live_app(app_id)
            if delivered is not None:
                return delivered.name, delivered.space_id, delivered.content
        n = self.app_index(app_id)
        if n is None:
            return None
        space = self._item_space(n)
        size = self.config.export_bytes
        return self._item_name(n), space["id"] if space else None, Content(size)

    def app(self, n: int) -> dict[str, Any]:
        item = self.item(n, "")
        app_id = item["resourceId"]
        attributes: dict[str, Any] = {
            "id": app_id,
            "name": item["name"],
            "description": "",
            "owner": item["ownerId"],
            "ownerId": item["ownerId"],
            "createdDate": item["createdAt"],
            "modifiedDate": item["updatedAt"],
            "published": False,
            "encrypted": True,
            "hasSectionAccess": False,
            "isDirectQueryMode": False,
            "thumbnail": "",
            "dynamicColor": "",
            "originAppId": "",
            "custom": {},
        }
        if "spaceId" in item:
            attributes["spaceId"] = item["spaceId"]
        delivered = self._delivered(n) if n >= self.item_count else None
        if delivered is not None:
            attributes["description"] = delivered.description
            attributes["createdDate"] = iso(delivered.created_at)
            attributes["modifiedDate"] = iso(delivered.modified_at or delivered.created_at)
            if delivered.publish_time is not None:
                attributes["publishTime"] = iso(delivered.publish_time)
                attributes["originAppId"] = delivered.origin_app_id
        last = self.last_finished_reload(app_id)
        if last is not None:
            attributes["lastReloadTime"] = iso(last[1])
        return {
            "attributes": attributes,
            "privileges": ["read", "update", "delete", "reload", "export", "duplicate"],
            "create": [{"resource": "sheet", "canCreate": True}],
        }

    def app_ids(self) -> list[str]:
        deleted = self.stores.deleted_seeded
        seeded = [
            self._resource_id(n)
            for n in range(self.item_count)
            if self._item_kind(n) == "app" and self._resource_id(n) not in deleted
        ]
        with self.lock:
            return seeded + [a.id for a in self.stores.apps if not a.deleted]

    # -- tokens ---------------------------------------------------------------------------------
    def live_tokens(self, client_id: str | None = None) -> int:
        now = self.now()
        with self.lock:
            return sum(
                1
                for t in self.tokens.values()
                if t.live(now) and (client_id is None or t.client_id == client_id)
            )

    def mint(self, client_id: str, user_id: str, scope: str) -> Token:
        now = self.now()
        token = Token(
            value=secrets.token_urlsafe(48),
            client_id=client_id,
            user_id=user_id,
            scope=scope,
            issued_at=now,
            expires_at=now + self.config.token_lifetime,
        )
        with self.lock:
            self.tokens[token.value] = token
            if len(self.tokens) >= self._sweep_tokens_at:
                # Amortised: the threshold doubles with what survives, so minting stays O(1).
                self._forget_dead_tokens(now)
                self._sweep_tokens_at = max(TOKEN_SWEEP_FLOOR, 2 * len(self.tokens))
        return token

    def _forget_dead_tokens(self, now: float) -> None:
        forgotten = [
            value
            for value, token in self.tokens.items()
            if token.dead_since() + DEAD_TOKEN_MEMORY < now
        ]
        for value in forgotten:
            del self.tokens[value]

    def add_refresh_grant(self, grant: RefreshGrant) -> str:
        value = secrets.token_urlsafe(48)
        with self.lock:
            self.refresh_grants[value] = grant
        return value

    def revoke(self, value: str) -> bool:
        with self.lock:
            token = self.tokens.get(value)
            if token is not None:
                token.revoked_at = token.revoked_at or self.now()
                return True
            return self.refresh_grants.pop(value, None) is not None

    def revoke_all(self) -> int:
        now = self.now()
        with self.lock:
            live = [t for t in self.tokens.values() if t.live(now)]
            for token in live:
                token.revoked_at = now
            self.refresh_grants.clear()
            return len(live)

    def expire_all(self) -> int:
        now = self.now()
        with self.lock:
            live = [t for t in self.tokens.values() if t.live(now)]
            for token in live:
                token.expires_at = now
            return len(live)

    # -- reloads --------------------------------------------------------------------------------
    def create_reload(
        self,
        app_id: str,
        user_id: str,
        partial: bool,
        *,
        weight: int = 1,
        variables: dict[str, str] | None = None,
    ) -> Reload:
        with self.lock:
            self.reload_counter += 1
            reload = Reload(
                id=f"{RELOAD_ID_PREFIX}{self.reload_counter:06x}",
                app_id=app_id,
                user_id=user_id,
                partial=partial,
                created_at=self.now(),
                ends=self.reload_endings.get(app_id, "SUCCEEDED"),
                weight=weight,
                variables=variables,
            )
            self.reloads[reload.id] = reload
            self.reloads_by_app.setdefault(app_id, []).append(reload.id)
            return reload

    def reload_phase(self, reload: Reload, now: float) -> tuple[str, float | None, float | None]:
        """(status, startTime, endTime) at `now`: the state machine runs on timestamps alone."""
        start = reload.created_at + self.config.reload_queue_time
        end = start + self.config.reload_duration
        if reload.canceled_at is not None and reload.canceled_at < end:
            started = start if reload.canceled_at >= start else None
            return "CANCELED", started, reload.canceled_at
        if now < start:
            return "QUEUED", None, None
        if now < end:
            return "RELOADING", start, None
        return reload.ends, start, end

    def cancel_reload(self, reload: Reload) -> str:
        with self.lock:
            status, _, _ = self.reload_phase(reload, self.now())
            if status in ("QUEUED", "RELOADING"):
                reload.canceled_at = self.now()
            return status

    def last_finished_reload(self, app_id: str) -> tuple[str, float] | None:
        now = self.now()
        with self.lock:
            ids = list(self.reloads_by_app.get(app_id, ()))
        for reload_id in reversed(ids):
            status, _, ended = self.reload_phase(self.reloads[reload_id], now)
            if ended is not None and status != "CANCELED":
                return status, ended
        return None

    def reload_view(self, reload: Reload, base_url: str, *, with_log: bool) -> dict[str, Any]:
        status, started, ended = self.reload_phase(reload, self.now())
        view: dict[str, Any] = {
            "id": reload.id,
            "appId": reload.app_id,
            "tenantId": self.tenant_id,
            "userId": reload.user_id,
            "type": "external",
            "status": status,
            "partial": reload.partial,
            "weight": reload.weight,
            "creationTime": iso(reload.created_at),
            "links": {"self": {"href": f"{base_url}/api/v1/reloads/{reload.id}"}},
        }
        if reload.variables is not None:
            # Not in reloads.json's Reload schema (which allows more properties): echoed so a
            # client can check what the reload ran with. *Sandbox choice*.
            view["variables"] = dict(reload.variables)
        if started is not None:
            view["startTime"] = iso(started)
        if ended is not None:
            view["endTime"] = iso(ended)
            view["engineTime"] = iso(ended)
        if status == "FAILED":
            view["errorCode"] = "EngineReloadFailed"
            view["errorMessage"] = "The reload script failed: Field 'Amount' not found."
        elif status == "EXCEEDED_LIMIT":
            view["errorCode"] = "ReloadLimitExceeded"
            view["errorMessage"] = "The reload exceeded the tenant's reload time limit."
        if with_log:
            view["log"] = self._reload_log(reload, status)
        return view

    @staticmethod
    def _reload_log(reload: Reload, status: str) -> str:
        lines = [f"ReloadID: {reload.id}"]
        if status == "QUEUED":
            return lines[0] + "\nQueued\n"
        lines += ["Started loading data"]
        lines += [f"Variable {name} = {value}" for name, value in (reload.variables or {}).items()]
        lines += ["Sales << Sales.qvd", "Lines fetched: 1,000"]
        if status == "RELOADING":
            return "\n".join(lines) + "\n"
        if status == "FAILED":
            lines += [
                "Sum_Sales << Sales",
                "Error: Field 'Amount' not found",
                "Execution failed",
                "The reload script failed: Field 'Amount' not found.",
            ]
        elif status == "EXCEEDED_LIMIT":
            lines += [
                "Sum_Sales << Sales",
                "The reload exceeded the tenant's reload time limit and was stopped",
            ]
        elif status == "CANCELED":
            lines += ["Reload was canceled"]
        else:
            lines += ["App saved", "Finished successfully"]
        return "\n".join(lines) + "\n"

    def reloads_for_app(self, app_id: str) -> list[Reload]:
        with self.lock:
            ids = list(self.reloads_by_app.get(app_id, ()))
        # Newest first: Qlik's default sort is -creationTime.
        return [self.reloads[i] for i in reversed(ids)]

    # -- rate limits ------------------------------------------------------------------------------
    def rate_limit(self, tier: int, principal: str) -> int | None:
        """Count one request; the seconds to wait when the tier's window is full, else None."""
        limit = self.config.rate_limit_tier1 if tier == 1 else self.config.rate_limit_tier2
        if limit is None:
            return None
        window = self.config.rate_limit_window
        now = self.now()
        with self.lock:
            current = self.rate_windows.get((tier, principal))
            if current is None or now >= current.started + window:
                current = RateWindow(started=now)
                self.rate_windows[(tier, principal)] = current
            current.count += 1
            if current.count <= limit:
                return None
            return max(1, math.ceil(current.started + window - now))

    # -- counters ----------------------------------------------------------------------------------
    def count_request(self, key: str) -> None:
        with self.lock:
            self.stats.requests[key] += 1

    def count_connection(self) -> None:
        with self.lock:
            self.stats.connections += 1

    def counters(self) -> dict[str, int]:
        with self.lock:
            return dict(self.stats.requests)

    def reset_counters(self) -> None:
        with self.lock:
            self.stats = Stats()
