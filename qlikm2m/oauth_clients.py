"""An OAuth client's credentials as the tenant holds them: public keys, client secrets, minted
tokens, and the rotation of a secret without downtime. No Typer here: commands call these.

Qlik's API (oauth-clients.json, oauth-tokens.json): readOAuthClient lists ``publicKeys`` and
``clientSecrets`` (hints); patchOAuthClient edits ``/publicKeys`` with a JSON Patch;
createOAuthClientSecret (at most five per client) and deleteOAuthClientSecret by hint;
``GET /api/v1/oauth-tokens`` lists tokens. All of them need the TenantAdmin role.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from qlikm2m.errors import ApiError, Interrupted, QlikM2MError, UsageError
from qlikm2m.redaction import register_secret

if TYPE_CHECKING:
    from qlikm2m.client import QlikClient
    from qlikm2m.settings import CredentialType

SECRET_LIMIT = 5  # createOAuthClientSecret: "a maximum of 5 client secrets at one time"


def _client_path(client_id: str) -> str:
    return f"/api/v1/oauth-clients/{quote(client_id, safe='')}"


def read_client(client: QlikClient, client_id: str) -> dict[str, Any]:
    """The OAuth client as an admin reads it (GET /api/v1/oauth-clients/{id})."""
    document = client.get_json(_client_path(client_id))
    if not isinstance(document, dict):
        raise ApiError(f"The tenant answered something else than an OAuth client for {client_id}.")
    return document


def public_keys(client: QlikClient, client_id: str) -> list[dict[str, Any]]:
    """The public JWKs registered on the client (``publicKeys``), in the tenant's order."""
    keys = read_client(client, client_id).get("publicKeys") or []
    return [k for k in keys if isinstance(k, dict)]


def secret_hints(client: QlikClient, client_id: str) -> list[dict[str, Any]]:
    """The client's secrets as the tenant shows them: ``hint``, ``createdAt``, ``createdBy``."""
    secrets = read_client(client, client_id).get("clientSecrets") or []
    return [s for s in secrets if isinstance(s, dict) and isinstance(s.get("hint"), str)]


def register_public_key(client: QlikClient, client_id: str, jwk: dict[str, Any]) -> None:
    """Add ``jwk`` to the client's public keys, keeping those already there.

    Sent as one ``replace`` of ``/publicKeys`` with the current list plus the new key, so the
    result does not depend on how the tenant reads ``add`` on an array. UsageError when a key
    with that kid is already registered.
    """
    current = public_keys(client, client_id)
    if any(k.get("kid") == jwk["kid"] for k in current):
        raise UsageError(
            f"The OAuth client {client_id} already has a key with kid {jwk['kid']!r}.",
            hint="Pass another --kid, or remove the old key in the management console.",
        )
    patch = [{"op": "replace", "path": "/publicKeys", "value": [*current, jwk]}]
    client.request("PATCH", _client_path(client_id), json=patch).read_prefix()


def remove_public_key(client: QlikClient, client_id: str, kid: str) -> None:
    """Remove the public key ``kid`` from the client, keeping the others (one ``replace`` of
    ``/publicKeys``, as ``register_public_key``). UsageError when no key has that kid."""
    current = public_keys(client, client_id)
    kept = [k for k in current if k.get("kid") != kid]
    if len(kept) == len(current):
        raise UsageError(
            f"The OAuth client {client_id} has no public key with kid {kid!r}.",
            hint=f"Its keys: {', '.join(str(k.get('kid')) for k in current) or 'none'}.",
        )
    patch = [{"op": "replace", "path": "/publicKeys", "value": kept}]
    client.request("PATCH", _client_path(client_id), json=patch).read_prefix()


@dataclass(frozen=True)
class CreatedSecret:
    client_id: str
    hint: str
    value: str = field(repr=False)
    created_at: str | None = None


def create_secret(client: QlikClient, client_id: str) -> CreatedSecret:
    """A new client secret (POST .../client-secrets); ApiError (409) past five secrets."""
    document = client.request("POST", f"{_client_path(client_id)}/client-secrets").json()
    value = document.get("clientSecret") if isinstance(document, dict) else None
    hint = document.get("hint") if isinstance(document, dict) else None
    if not isinstance(value, str) or not value or not isinstance(hint, str):
        raise ApiError("The tenant created a client secret but did not return it with a hint.")
    register_secret(value)
    created = document.get("createdAt")
    return CreatedSecret(client_id, hint, value, created if isinstance(created, str) else None)


def delete_secret(client: QlikClient, client_id: str, hint: str) -> None:
    """Delete the client secret with ``hint`` (DELETE .../client-secrets/{hint})."""
    path = f"{_client_path(client_id)}/client-secrets/{quote(hint, safe='')}"
    client.request("DELETE", path).read_prefix()


def tokens(client: QlikClient, user_id: str | None) -> Iterator[dict[str, Any]]:
    """Tokens the tenant lists (GET /api/v1/oauth-tokens), of one user or of all (admins)."""
    params = {"userId": user_id} if user_id else None
    yield from client.paginate("/api/v1/oauth-tokens", params)


def own_user_id(client: QlikClient) -> str:
    """The id of the user the credentials act as (the M2M client's bot user)."""
    me = client.get_json("/api/v1/users/me")
    user_id = me.get("id") if isinstance(me, dict) else None
    if not isinstance(user_id, str):
        raise ApiError("GET /api/v1/users/me answered without an id.")
    return user_id


def prove_secret(client: QlikClient, client_id: str, secret: str) -> None:
    """Mint a token with ``secret`` on the client's tenant (and revoke it again): proof that the
    secret works before anything relies on it. AuthError when the tenant refuses it."""
    _prove(client, client_id, secret)


def _prove(
    client: QlikClient,
    client_id: str,
    secret: str,
    *,
    credential_type: CredentialType = "client_secret",
    key_id: str | None = None,
    key_alg: str | None = None,
) -> None:
    from contextlib import suppress

    from qlikm2m.settings import explicit_settings
    from qlikm2m.tokens import TokenManager

    settings = client.settings
    fresh = explicit_settings(
        server=settings.server_url,
        auth_type="oauth",
        client_id=client_id,
        secret=secret,
        scope=settings.scope.value,
        ca_bundle=settings.ca_bundle.value,
        source="the new key" if credential_type == "private_key" else "the new secret",
        credential_type=credential_type,
        key_id=key_id,
        key_alg=key_alg,
    )
    manager = TokenManager(fresh, client.runtime.env, client.transport, use_cache=False)
    token = manager.token()
    # A proof token would sit unused for six hours in the tenant's token list.
    with suppress(QlikM2MError):
        manager.revoke(token)


def prove_key(client: QlikClient, client_id: str, pem: str, kid: str, alg: str) -> None:
    """Mint a token with the private key ``pem`` (signing as ``kid``/``alg``) on the client's
    tenant, and revoke it again: proof the tenant accepts the key. AuthError when refused."""
    _prove(client, client_id, pem, credential_type="private_key", key_id=kid, key_alg=alg)


# --- rotation -----------------------------------------------------------------------------------


@dataclass
class Rotation:
    """What a rotation did, for the report; ``remaining`` lists the clean-up left to a person.

    ``kind`` says what was rotated: a client secret (named by its hint) or a key pair (named by
    its public key's kid).
    """

    client_id: str
    old_hint: str
    new_hint: str | None = None
    stored: bool = False
    proved: bool = False
    old_deleted: bool = False
    remaining: list[str] = field(default_factory=list)
    kind: Literal["secret", "key"] = "secret"

    @property
    def noun(self) -> str:
        return "secret" if self.kind == "secret" else "key"

    def as_dict(self) -> dict[str, Any]:
        old, new = ("oldHint", "newHint") if self.kind == "secret" else ("oldKid", "newKid")
        return {
            "clientId": self.client_id,
            old: self.old_hint,
            new: self.new_hint,
            "stored": self.stored,
            "proved": self.proved,
            "oldDeleted": self.old_deleted,
            "remaining": list(self.remaining),
        }


class RotationError(ApiError):
    """A rotation stopped part-way; ``details`` carry the report, including what remains."""


def choose_old_hint(
    hints: list[str], current_secret: str | None, wanted: str | None, client_id: str
) -> str:
    """The hint of the secret a rotation replaces: ``wanted`` if given (it must exist), else the
    only secret, else the one whose hint the secret in use starts or ends with. UsageError when
    that is not decidable: a rotation never guesses which secret to delete."""
    if wanted is not None:
        if wanted not in hints:
            raise UsageError(
                f"The OAuth client {client_id} has no secret with hint {wanted!r}.",
                hint=f"Its secrets: {', '.join(hints) or 'none'}.",
            )
        return wanted
    if len(hints) == 1:
        return hints[0]
    if current_secret:
        matching = [h for h in hints if current_secret.endswith(h) or current_secret.startswith(h)]
        if len(matching) == 1:
            return matching[0]
    raise UsageError(
        f"The OAuth client {client_id} has {len(hints)} secrets and the one to replace is not "
        "clear.",
        hint=f"Pass --old-hint with one of: {', '.join(hints) or 'none'}.",
    )


def rotate_secret(
    client: QlikClient,
    client_id: str,
    old_hint: str,
    *,
    store: Callable[[CreatedSecret], None],
    prove: Callable[[CreatedSecret], None],
    was_stored: Callable[[CreatedSecret], bool] | None = None,
) -> Rotation:
    """Replace the client secret ``old_hint`` without downtime; returns the report.

    1. create a new secret (the old one keeps working: a client may hold up to five);
    2. ``prove(new)``: mint a token with it, before anything relies on it;
    3. ``store(new)``: put it where the next runs read it (a 0600 file, a context's secret
       store), which is why it is a callable;
    4. delete the old secret by its hint.

    When 2 or 3 fails the new secret is deleted again and whatever held the old secret still
    works: a half-done rotation never leaves the credentials broken. An interrupt (Ctrl-C,
    SIGTERM) does the same before the new secret is stored and leaves the old one for a person
    after; ``was_stored(new)`` tells, after an interrupt during ``store``, whether the store
    committed (a transactional store either did or did not).

    Raises RotationError (exit 5) when a step fails and Interrupted (exit 130) on an interrupt,
    with the report in ``details``: which secret works now and ``remaining``, the clean-up a
    person still has to do.
    """
    rotation = Rotation(client_id=client_id, old_hint=old_hint)
    hints = [s["hint"] for s in secret_hints(client, client_id)]
    if old_hint not in hints:
        raise UsageError(f"The OAuth client {client_id} has no secret with hint {old_hint!r}.")
    if len(hints) >= SECRET_LIMIT:
        raise UsageError(
            f"The OAuth client {client_id} already holds {SECRET_LIMIT} secrets, the maximum.",
            hint="Delete one it no longer uses (`qlikm2m oauth secrets delete HINT`) first.",
        )
    try:
        created = create_secret(client, client_id)
    except KeyboardInterrupt:
        raise _interrupted_before_creation(rotation, "oauth secrets ls") from None
    rotation.new_hint = created.hint
    flag = f"--client {client_id}"
    return _run_rotation(
        rotation,
        prove=lambda: prove(created),
        store=lambda: store(created),
        was_stored=(lambda: was_stored(created)) if was_stored is not None else None,
        undo_new=lambda: delete_secret(client, client_id, created.hint),
        delete_old=lambda: delete_secret(client, client_id, old_hint),
        cleanup_new=f"delete the unused new secret: qlikm2m oauth secrets delete {created.hint} "
        f"{flag}",
        cleanup_old=f"delete the old secret: qlikm2m oauth secrets delete {old_hint} {flag}",
    )


def rotate_key(
    client: QlikClient,
    client_id: str,
    old_kid: str,
    new_jwk: dict[str, Any],
    *,
    store: Callable[[], None],
    prove: Callable[[], None],
    was_stored: Callable[[], bool] | None = None,
) -> Rotation:
    """Replace the key pair whose public key is ``old_kid`` by the one of ``new_jwk``.

    The same steps and guarantees as ``rotate_secret``: register the new public key (the old
    one keeps working), ``prove()`` a token mints with the new private key, ``store()`` it, then
    remove the old public key. A failure or an interrupt before the store removes the new public
    key again. Raises RotationError (exit 5) or Interrupted (exit 130) with the report.
    """
    rotation = Rotation(client_id=client_id, old_hint=old_kid, kind="key")
    kids = [k.get("kid") for k in public_keys(client, client_id)]
    if old_kid not in kids:
        raise UsageError(
            f"The OAuth client {client_id} has no public key with kid {old_kid!r}.",
            hint=f"Its keys: {', '.join(str(k) for k in kids) or 'none'}.",
        )
    new_kid = str(new_jwk["kid"])
    try:
        register_public_key(client, client_id, new_jwk)
    except KeyboardInterrupt:
        raise _interrupted_before_creation(rotation, "oauth keys ls") from None
    rotation.new_hint = new_kid
    flag = f"--client {client_id}"
    return _run_rotation(
        rotation,
        prove=prove,
        store=store,
        was_stored=was_stored,
        undo_new=lambda: remove_public_key(client, client_id, new_kid),
        delete_old=lambda: remove_public_key(client, client_id, old_kid),
        cleanup_new=f"remove the unused new key: qlikm2m oauth keys delete {new_kid} {flag}",
        cleanup_old=f"remove the old key: qlikm2m oauth keys delete {old_kid} {flag}",
    )


def _run_rotation(
    rotation: Rotation,
    *,
    prove: Callable[[], None],
    store: Callable[[], None],
    was_stored: Callable[[], bool] | None,
    undo_new: Callable[[], None],
    delete_old: Callable[[], None],
    cleanup_new: str,
    cleanup_old: str,
) -> Rotation:
    """Steps 2-4 of a rotation, the new credential created; see ``rotate_secret``."""
    noun = rotation.noun
    try:
        for step, action in (("prove", prove), ("store", store)):
            try:
                action()
            except (QlikM2MError, OSError) as error:
                _undo(rotation, undo_new, cleanup_new)
                raise _stopped(rotation, f"could not {step} the new {noun}", error) from error
            setattr(rotation, "proved" if step == "prove" else "stored", True)
        try:
            delete_old()
        except QlikM2MError as error:
            rotation.remaining.append(cleanup_old)
            raise _stopped(rotation, f"could not delete the old {noun}", error) from error
        rotation.old_deleted = True
        return rotation
    except KeyboardInterrupt:
        if not rotation.stored and was_stored is not None and was_stored():
            rotation.stored = True
        if rotation.stored:
            if not rotation.old_deleted:
                rotation.remaining.append(f"{cleanup_old} (if it is still listed)")
        else:
            _undo(rotation, undo_new, cleanup_new)
        raise Interrupted(
            f"{noun.capitalize()} rotation interrupted. {_what_works(rotation)} still works.",
            hint="; ".join(rotation.remaining) or "Nothing is left to clean up; run it again.",
            details={"rotation": rotation.as_dict()},
        ) from None


def _interrupted_before_creation(rotation: Rotation, listing: str) -> Interrupted:
    noun = rotation.noun
    return Interrupted(
        f"{noun.capitalize()} rotation interrupted. {_what_works(rotation)} still works.",
        hint=f"A new {noun} may have been added to the client: `qlikm2m {listing} --client "
        f"{rotation.client_id}` lists them; delete one that nothing uses.",
        details={"rotation": rotation.as_dict()},
    )


def _undo(rotation: Rotation, undo_new: Callable[[], None], cleanup_new: str) -> None:
    try:
        undo_new()
    except QlikM2MError:
        rotation.remaining.append(cleanup_new)


def _what_works(rotation: Rotation) -> str:
    if rotation.stored:
        return f"The new {rotation.noun}"
    what = "secret" if rotation.kind == "secret" else "key"
    return f"The old {what} ({rotation.old_hint})"


def _stopped(rotation: Rotation, what: str, error: QlikM2MError | OSError) -> RotationError:
    reason = error.message if isinstance(error, QlikM2MError) else str(error)
    kind = rotation.noun.capitalize()
    return RotationError(
        f"{kind} rotation stopped: {what}: {reason.rstrip('.')}. {_what_works(rotation)} still "
        "works.",
        hint="; ".join(rotation.remaining) or "Nothing is left to clean up; run it again.",
        details={"rotation": rotation.as_dict()},
    )


# --- files a person asked for -----------------------------------------------------------------


def write_private_file(path: Path, text: str, *, what: str, overwrite: bool) -> Path:
    """Write ``text`` (a private key or a new secret) to ``path``, mode 0600 from the start.

    Refuses an existing file unless ``overwrite``: a key or secret is never clobbered by
    accident. UsageError for an existing file, ConfigError when it cannot be written.
    """
    from qlikm2m.errors import ConfigError
    from qlikm2m.fileio import atomic_write

    target = path.expanduser()
    if target.exists() and not overwrite:
        raise UsageError(
            f"{target} already exists; the {what} was not written.",
            hint="Choose another file, or pass --force to replace it.",
        )
    try:
        atomic_write(target, text.encode(), mode=0o600)
    except OSError as error:
        raise ConfigError(
            f"The {what} could not be written to {target}: {error.strerror or error}."
        ) from None
    return target
