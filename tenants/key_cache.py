"""API keys with their tenants, remembered per process while no key or tenant has changed.

Every request is authenticated, and reading the key and its tenant from the database cost more
than the lookup it guards (bench/README.md). A process remembers the keys it has verified,
stamped with a generation (core/shared_redis.py); saving or deleting any key, tenant or tenant
settings row replaces the generation, so every process reads keys afresh on its next request and
revocation takes effect at once. The generation is compared in the process while its listener
hears every replacement, else asked of Redis. Without Redis (the embedded default, or while
Redis is down) nothing is remembered and every key is read from the database.

Keys and tenants changed with `QuerySet.update()` send no signal: call `keys_changed()` after.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.signals import post_delete, post_save

from core.hashing import hash_secret
from core.shared_redis import Generation
from tenants.models import ApiKey, Tenant, tenant_settings_models

GENERATION_KEY = "callbridge:api-keys-generation"
MAX_KEYS = 10_000

M = TypeVar("M", bound=Model)


class KeyCache:
    """Secret hash -> (generation, key with its tenant); hands out copies, never the original."""

    def __init__(self) -> None:
        self._keys: dict[str, tuple[bytes, ApiKey]] = {}
        self._lock = threading.Lock()

    def find(
        self, plaintext: str, load: Callable[[str], ApiKey | None], *, shared: bool = False
    ) -> ApiKey | None:
        """The key whose plaintext this is: remembered while current, else `load(plaintext)`.

        A caller that only reads the key, its tenant and settings may take the `shared` instance
        every request of the process uses, instead of a copy of its own (a lookup's 4 %).
        """
        generation = key_generation.current()  # None without Redis, or while it is down
        if generation is None:
            return load(plaintext)
        digest = hash_secret(plaintext)  # only the key's holder finds it, even here
        remembered = self._keys.get(digest)
        if remembered is not None and remembered[0] == generation:
            return remembered[1] if shared else _copy(remembered[1])
        api_key = load(plaintext)
        if api_key is not None:
            with self._lock:
                if len(self._keys) >= MAX_KEYS:
                    self._keys.clear()
                self._keys[digest] = (generation, _copy(api_key))
        return api_key

    def note_use(self, plaintext: str, api_key: ApiKey) -> None:
        """Remember when the key was last used, as just written to its row."""
        remembered = self._keys.get(hash_secret(plaintext))
        if remembered is not None and remembered[1].pk == api_key.pk:
            remembered[1].last_used_at = api_key.last_used_at

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


keys = KeyCache()
key_generation = Generation(GENERATION_KEY)


def keys_changed() -> None:
    """Make every process read keys and tenants afresh, now and once this transaction commits."""
    key_generation.replace()


def _copy(api_key: ApiKey) -> ApiKey:
    # A request may change its key, tenant or settings in memory (a service whose validation
    # fails leaves its changes behind), so each gets instances of its own.
    duplicate = _instance(api_key)
    tenant = _instance(api_key.tenant)
    loaded = api_key.tenant._state.fields_cache
    tenant._state.fields_cache = {
        name: _instance(loaded[name]) for name in _settings_names() if loaded.get(name) is not None
    }
    duplicate._state.fields_cache["tenant"] = tenant
    return duplicate


@functools.cache
def _settings_names() -> tuple[str, ...]:
    """Tenant's attributes holding its settings rows (asked once, not on every request)."""
    return tuple(model.related_name() for model in tenant_settings_models())


def _instance(original: M) -> M:
    """A copy of a saved row's fields without its cached relations.

    copy.copy goes through pickling's __reduce__ and cost a third of a remembered lookup.
    """
    duplicate = original.__class__.__new__(original.__class__)
    duplicate.__dict__.update(original.__dict__)
    duplicate._state = ModelState()
    duplicate._state.db, duplicate._state.adding = original._state.db, False
    return duplicate


def _on_change(sender: type, **kwargs: object) -> None:
    keys_changed()


def connect_signals() -> None:
    """Expire remembered keys whenever a key, tenant or its settings change (TenantsConfig)."""
    watched: tuple[type[Model], ...] = (ApiKey, Tenant, *tenant_settings_models())
    for model in watched:
        post_save.connect(_on_change, sender=model, dispatch_uid=f"key_cache_{model.__name__}")
        post_delete.connect(
            _on_change, sender=model, dispatch_uid=f"key_cache_{model.__name__}_del"
        )
