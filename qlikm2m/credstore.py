"""One store for contexts, their secrets and their cached tokens: every change is a transaction.

The contexts file (``contexts.toml``), the secret store (the OS keyring, or a 0600 file under
``secrets/``) and the token cache change together in one write order:

1. under the contexts lock, finish (or undo) whatever a killed run left, then read the file;
2. plan the change (validation errors stop here: nothing was touched);
3. write a journal (``contexts.toml.journal``, 0600, names only: never a secret) saying which
   secret slots are about to be written and deleted, and what the committed file will hash to;
4. write the new secrets (an exception rolls them back: old values restored, new ones deleted);
5. **commit**: the atomic replace of the contexts file;
6. complete: delete the secrets the change retired, drop the tokens it invalidated, delete the
   journal.

SIGINT and SIGTERM arriving during steps 3-6 are held and delivered once step 6 is done, so an
interrupt leaves the old state or the new one, never a mix. Only a SIGKILL or a power loss can
stop the run inside them; the next store operation then reads the journal and rolls forward (the
file was committed: do step 6) or back (it was not: delete the secrets that step 4 created). Temporary
files of killed writers and secret files that no context owns are removed at the same time.

Knows nothing of Typer: the ``context`` commands are thin over it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from qlikm2m import contexts as contexts_module
from qlikm2m import fileio, paths, secretstore
from qlikm2m.contexts import Context, ContextsFile, SecretStorage, new_generation
from qlikm2m.errors import ConfigError, KeyringError, QlikM2MError

JOURNAL_SUFFIX = ".journal"
JOURNAL_VERSION = 1
_DEFERRED_SIGNALS = tuple(
    sig for sig in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if sig
)


@dataclass(frozen=True)
class Slot:
    """Where one secret lives: a keyring entry or a secret file, named after its context."""

    storage: SecretStorage
    name: str

    @staticmethod
    def of(context: Context) -> Slot:
        return Slot(context.secret_storage, context.name)

    def as_json(self) -> list[str]:
        return [self.storage, self.name]


@dataclass(frozen=True)
class TokenDrop:
    """Cached tokens a change invalidates: one client on one server, minted under a generation."""

    server: str
    client_id: str | None
    generation: str

    def as_json(self) -> list[str | None]:
        return [self.server, self.client_id, self.generation]


@dataclass
class Plan:
    """What one transaction does, decided from the file as read under the lock.

    ``puts`` are written before the commit (and rolled back if it does not happen); ``deletes``
    and ``drops`` are done after it.
    """

    after: ContextsFile
    puts: dict[Slot, str] = field(default_factory=dict, repr=False)
    deletes: list[Slot] = field(default_factory=list)
    drops: list[TokenDrop] = field(default_factory=list)


@dataclass
class Outcome:
    """The result of a transaction: the committed file and what completion did."""

    after: ContextsFile
    deleted: dict[Slot, bool] = field(default_factory=dict)
    dropped: int = 0
    warnings: list[str] = field(default_factory=list)


# ---- signals -------------------------------------------------------------------------------------


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block, then deliver them (once each) as they arrived.

    Python runs signal handlers in the main thread only, so elsewhere (a test's worker thread)
    there is nothing to defer and the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    # A handler installed from C (getsignal gives None) could not be put back: leave it alone.
    previous = {
        sig: signal.signal(sig, hold)
        for sig in _DEFERRED_SIGNALS
        if signal.getsignal(sig) is not None
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


# ---- secret slots ------------------------------------------------------------------------------


class _Secrets:
    """The secret store seen as slots; the keyring adapter is made once, when first needed."""

    def __init__(self, env: Mapping[str, str], *, interactive: bool) -> None:
        self.env = env
        self.interactive = interactive
        self._adapter: secretstore.KeyringAdapter | None = None

    def _keyring(self) -> secretstore.KeyringAdapter:
        if self._adapter is None:
            self._adapter = secretstore.KeyringAdapter(self.env, interactive=self.interactive)
        return self._adapter

    def path(self, slot: Slot) -> Path:
        return secretstore.secret_file_path(slot.name, self.env)

    def peek(self, slot: Slot) -> str | None:
        """The value in ``slot`` (None when empty), for a rollback; never raises for a file."""
        if slot.storage == "file":
            try:
                return self.path(slot).read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError):
                return None
        return self._keyring().get(slot.name)

    def read(self, context: Context) -> str:
        """The secret of ``context``, checked as every command reads it (see secretstore)."""
        return secretstore.read_secret(
            context, self.env, interactive=self.interactive, adapter=self._keyring()
        )

    def put(self, slot: Slot, secret: str) -> None:
        if slot.storage == "file":
            fileio.atomic_write(self.path(slot), secret.encode("utf-8"), mode=0o600)
        else:
            self._keyring().set(slot.name, secret)

    def delete(self, slot: Slot) -> bool:
        if slot.storage == "file":
            try:
                self.path(slot).unlink()
            except FileNotFoundError:
                return False
            return True
        return self._keyring().delete(slot.name)

    def probe(self) -> None:
        self._keyring().check_available()


# ---- the store ---------------------------------------------------------------------------------


class CredentialStore:
    """The contexts file, the secrets and the token cache of one configuration folder."""

    def __init__(self, env: Mapping[str, str], *, interactive: bool) -> None:
        self.env = env
        self.interactive = interactive
        self.path = contexts_module.contexts_path(env)
        self.journal_path = self.path.with_name(self.path.name + JOURNAL_SUFFIX)
        self._secrets = _Secrets(env, interactive=interactive)

    # -- the transaction --

    def transact(self, plan_for: Callable[[ContextsFile], Plan]) -> Outcome:
        """Run one transaction; ``plan_for`` gets the file as read under the lock.

        Raises what ``plan_for`` raises (nothing changed), or the secret store's or the file's
        error after rolling the secrets back (nothing changed either).
        """
        with self._locked():
            self._recover()
            before = contexts_module.read_file(self.path)
            plan = plan_for(before)
            if plan.after == before and not plan.puts and not plan.deletes:
                return Outcome(after=before)
            return self._apply(plan)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = contexts_module.lock_path(self.env)
        try:
            held = fileio.locked(lock)
            held.__enter__()
        except OSError as error:
            raise ConfigError(
                f"Cannot lock {lock}: {error.strerror or error}.",
                hint="Fix the permissions of the config folder, or point QLIKM2M_CONFIG_DIR at a "
                "writable one.",
            ) from None
        try:
            yield
        finally:
            held.__exit__(None, None, None)

    def _apply(self, plan: Plan) -> Outcome:
        data = contexts_module.dump(plan.after)
        outcome = Outcome(after=plan.after)
        with deferred_signals():
            # Old values, read before anything is written: what a rollback puts back.
            previous = {slot: self._secrets.peek(slot) for slot in plan.puts}
            written: list[Slot] = []
            target = self.journal_path
            try:
                self._write_journal(
                    {
                        "version": JOURNAL_VERSION,
                        "commit": hashlib.sha256(data).hexdigest(),
                        "puts": [
                            [*slot.as_json(), previous[slot] is not None] for slot in plan.puts
                        ],
                        "deletes": [slot.as_json() for slot in plan.deletes],
                        "drops": [drop.as_json() for drop in plan.drops],
                    }
                )
                for slot, secret in plan.puts.items():
                    written.append(slot)
                    target = self._secrets.path(slot)
                    self._secrets.put(slot, secret)
                target = self.path
                fileio.atomic_write(self.path, data)
            except OSError as error:
                self._roll_back(written, previous)
                where = error.filename or target
                raise ConfigError(
                    f"Cannot write {where}: {error.strerror or error}; nothing was changed.",
                    hint="Free some space or fix the folder's permissions, then run the command "
                    "again.",
                ) from None
            except BaseException:
                self._roll_back(written, previous)
                raise
            # Committed: from here on the change is done, whatever fails below.
            self._complete(plan.deletes, plan.drops, outcome)
            self._remove_journal()
        return outcome

    def _roll_back(self, written: list[Slot], previous: Mapping[Slot, str | None]) -> None:
        for slot in written:
            old = previous.get(slot)
            with contextlib.suppress(QlikM2MError, OSError):
                if old is None:
                    self._secrets.delete(slot)
                else:
                    self._secrets.put(slot, old)
        self._remove_journal()

    def _complete(self, deletes: list[Slot], drops: list[TokenDrop], outcome: Outcome) -> None:
        for slot in deletes:
            try:
                outcome.deleted[slot] = self._secrets.delete(slot)
            except (QlikM2MError, OSError) as error:
                outcome.deleted[slot] = False
                message = error.message if isinstance(error, QlikM2MError) else str(error)
                outcome.warnings.append(
                    f"the {_slot_words(slot)} of {slot.name!r} was not removed: {message}"
                )
        for drop in drops:
            outcome.dropped += _drop_tokens(self.env, drop)

    # -- the journal --

    def _write_journal(self, document: dict[str, Any]) -> None:
        fileio.atomic_write(self.journal_path, json.dumps(document).encode(), mode=0o600)

    def _remove_journal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()

    def _recover(self) -> None:
        """Finish or undo what a killed run left (the caller holds the lock)."""
        with deferred_signals():
            self._replay_journal()
            self._sweep_leftovers()

    def _replay_journal(self) -> None:
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as error:
            raise ConfigError(f"Cannot read {self.journal_path}: {error.strerror}.") from None
        try:
            document = json.loads(raw)
            commit = str(document["commit"])
            puts = [
                (Slot(_storage(s), str(n)), bool(existed)) for s, n, existed in document["puts"]
            ]
            deletes = [Slot(_storage(s), str(n)) for s, n in document["deletes"]]
            drops = [
                TokenDrop(str(a), b if b is None else str(b), str(c))
                for a, b, c in document["drops"]
            ]
        except (ValueError, KeyError, TypeError):
            # Not ours or torn (atomic_write makes that unlikely): nothing safe to replay.
            self._remove_journal()
            return
        try:
            current = self.path.read_bytes()
        except FileNotFoundError:
            current = b""
        if hashlib.sha256(current).hexdigest() == commit:
            self._complete(deletes, drops, Outcome(after=contexts_module.read_file(self.path)))
        else:
            self._undo(puts)
        self._remove_journal()

    def _undo(self, puts: list[tuple[Slot, bool]]) -> None:
        """The commit did not happen: take back the secrets the killed run wrote."""
        state = contexts_module.read_file(self.path)
        owned = {Slot.of(context) for context in state.contexts.values()}
        renewed = state
        for slot, existed in puts:
            if slot not in owned and not existed:
                with contextlib.suppress(QlikM2MError, OSError):
                    self._secrets.delete(slot)
            elif slot in owned:
                # The old value was overwritten and is gone: whatever the slot holds now gets a
                # new generation, so no token minted with the old secret is trusted any more.
                owner = state.contexts[slot.name]
                renewed = renewed.with_context(
                    replace(owner, credential_generation=new_generation())
                )
        if renewed != state:
            fileio.atomic_write(self.path, contexts_module.dump(renewed))

    def _sweep_leftovers(self) -> None:
        """Temporary files of killed writers and secret files that no context owns."""
        folder = paths.config_dir(self.env) / secretstore.SECRETS_DIRNAME
        for leftover in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        try:
            entries = list(folder.iterdir())
        except OSError:
            return
        state: ContextsFile | None = None
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                # Secret files are only written under the lock we hold: this one was abandoned.
                with contextlib.suppress(OSError):
                    entry.unlink()
                continue
            if state is None:
                state = contexts_module.read_file(self.path)
            owner = state.contexts.get(unquote(entry.name))
            owned = (
                owner is not None
                and owner.secret_in_file
                and secretstore.secret_file_path(owner.name, self.env).name == entry.name
            )
            if not owned and entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(OSError):
                    entry.unlink()

    # -- reading --

    def load(self) -> ContextsFile:
        return contexts_module.load_contexts(self.env)

    def read_secret(self, context: Context) -> str:
        """The secret of a stored context (ConfigError/KeyringError when it is missing)."""
        return self._secrets.read(context)

    # -- the operations the commands use --

    def save(
        self,
        context: Context,
        secret: str,
        *,
        make_current: bool,
        replace_existing: bool,
    ) -> Outcome:
        """Create ``context`` with ``secret`` (``context init``/``create``), or replace it.

        The context gets a new credential generation; a replaced one's tokens are dropped.
        """
        from qlikm2m.errors import UsageError

        if not secret:
            raise UsageError(f"The secret for context {context.name!r} is empty.")
        context = replace(context, credential_generation=new_generation())

        def plan_for(before: ContextsFile) -> Plan:
            previous = before.contexts.get(context.name)
            if previous is not None and not replace_existing:
                raise UsageError(
                    f"A context named {context.name!r} was created meanwhile; nothing saved.",
                    hint="Pass --force to replace it.",
                )
            after = before.with_context(context)
            if make_current:
                after = after.with_current(context.name)
            plan = Plan(after=after, puts={Slot.of(context): secret})
            if previous is not None:
                if Slot.of(previous) != Slot.of(context):
                    plan.deletes.append(Slot.of(previous))
                plan.drops += _drops_of(previous)
            return plan

        return self.transact(plan_for)

    def update(self, name: str, new: Context, secret: str | None) -> Outcome:
        """Replace the settings of context ``name`` with ``new``; ``secret`` when it changes.

        A new secret renews the credential generation; a new storage moves the secret; changed
        credentials drop the tokens cached under the old ones.
        """

        def plan_for(before: ContextsFile) -> Plan:
            old = before.get(name)  # removed meanwhile: say so rather than resurrect it
            plan = Plan(after=before)
            moved = Slot.of(old) != Slot.of(new)
            if secret is not None:
                updated = replace(new, credential_generation=new_generation())
                plan.puts[Slot.of(new)] = secret
            else:
                updated = replace(new, credential_generation=old.credential_generation)
            if secret is None and moved:
                plan.puts[Slot.of(new)] = self.read_secret(old)
            if moved:
                plan.deletes.append(Slot.of(old))
            if secret is not None or _credentials(old) != _credentials(updated):
                plan.drops += _drops_of(old)
            plan.after = before.with_context(updated)
            return plan

        return self.transact(plan_for)

    def rename(self, old_name: str, new_name: str, *, replace_existing: bool) -> Outcome:
        """Rename a context; its secret moves to the new name and its generation stays."""
        from qlikm2m.errors import UsageError

        def plan_for(before: ContextsFile) -> Plan:
            if old_name not in before.contexts:
                raise ConfigError(f"Context {old_name!r} was removed meanwhile; nothing renamed.")
            old = before.contexts[old_name]
            replaced = before.contexts.get(new_name)
            if replaced is not None and not replace_existing:
                raise UsageError(
                    f"A context named {new_name!r} already exists.",
                    hint="Pass --force to replace it.",
                )
            new = replace(old, name=new_name)
            after = before.without(old_name).with_context(new)
            if before.current == old_name:
                after = after.with_current(new_name)
            plan = Plan(after=after, puts={Slot.of(new): self.read_secret(old)})
            plan.deletes.append(Slot.of(old))
            if replaced is not None:
                if Slot.of(replaced) != Slot.of(new):
                    plan.deletes.append(Slot.of(replaced))
                plan.drops += _drops_of(replaced)
            return plan

        return self.transact(plan_for)

    def remove(self, name: str, *, force: bool) -> Outcome:
        """Delete a context, its secret and the tokens cached under its generation.

        Without ``force`` a keyring that does not answer stops the removal before anything is
        changed (KeyringError); with it, the context goes and the entry is left, with a warning.
        """

        def plan_for(before: ContextsFile) -> Plan:
            context = before.get(name)
            if not context.secret_in_file:
                try:
                    self._secrets.probe()
                except KeyringError as error:
                    if not force:
                        error.hint = (
                            f"{error.hint} Or pass --force to delete the context anyway and "
                            "remove its keyring entry later yourself."
                        )
                        raise
            return Plan(
                after=before.without(name),
                deletes=[Slot.of(context)],
                drops=_drops_of(context),
            )

        return self.transact(plan_for)

    def import_contexts(
        self,
        entries: list[tuple[Context, str]],
        *,
        current: str | None,
        replace_existing: bool,
    ) -> Outcome:
        """Add ``entries`` (context, secret) all or nothing; make ``current`` current if none is."""
        fresh = [
            (replace(context, credential_generation=new_generation()), secret)
            for context, secret in entries
        ]

        def plan_for(before: ContextsFile) -> Plan:
            plan = Plan(after=before)
            after = before
            for context, secret in fresh:
                previous = before.contexts.get(context.name)
                if previous is not None:
                    if not replace_existing:
                        continue
                    if Slot.of(previous) != Slot.of(context):
                        plan.deletes.append(Slot.of(previous))
                    plan.drops += _drops_of(previous)
                plan.puts[Slot.of(context)] = secret
                after = after.with_context(context)
            if current is not None and after.current is None and current in after.contexts:
                after = after.with_current(current)
            plan.after = after
            return plan

        return self.transact(plan_for)

    def set_current(self, name: str | None) -> ContextsFile:
        """Make ``name`` the current context (None: no current context)."""
        return self.transact(lambda before: Plan(after=before.with_current(name))).after

    def bind(self, name: str) -> str | None:
        """Give an unbound context (from a file before schema 2) a credential generation.

        Returns the generation, or None when the file cannot be written (a read-only config
        folder): the context then keeps minting without the cache, which is slower but correct.
        A fresh generation has no cached token yet, so no token of unknown origin is trusted.
        """
        try:
            outcome = self.transact(lambda before: _bound(before, name))
        except (QlikM2MError, OSError):
            return None
        context = outcome.after.contexts.get(name)
        return context.credential_generation if context is not None else None


def _bound(before: ContextsFile, name: str) -> Plan:
    context = before.contexts.get(name)
    if context is None or context.credential_generation:
        return Plan(after=before)
    return Plan(after=before.with_context(replace(context, credential_generation=new_generation())))


def _credentials(context: Context) -> tuple[Any, ...]:
    return (
        context.server,
        context.auth_type,
        context.client_id,
        context.scope,
        context.ca_bundle,
        context.credential_generation,
        context.credential_type,
        context.key_id,
        context.key_alg,
    )


def _drops_of(context: Context) -> list[TokenDrop]:
    if context.auth_type != "oauth" or not context.credential_generation:
        return []
    return [TokenDrop(context.server, context.client_id, context.credential_generation)]


def _drop_tokens(env: Mapping[str, str], drop: TokenDrop) -> int:
    from qlikm2m.tokens import drop_cached_tokens

    try:
        return drop_cached_tokens(
            env, server=drop.server, client_id=drop.client_id, generation=drop.generation
        )
    except QlikM2MError:
        # A hand-edited server that no longer parses: no token can have been cached for it.
        return 0


def _storage(value: Any) -> SecretStorage:
    if value == "file":
        return "file"
    if value == "keyring":
        return "keyring"
    raise ValueError(value)


def _slot_words(slot: Slot) -> str:
    return "secret file" if slot.storage == "file" else "keyring entry"
