import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from core import encryption


@pytest.fixture
def keys(settings):
    def use(*keys: str) -> None:
        settings.FIELD_ENCRYPTION_KEYS = list(keys)
        encryption._fernet.cache_clear()

    yield use
    encryption._fernet.cache_clear()


def test_it_round_trips_and_never_stores_the_plaintext(keys):
    keys(Fernet.generate_key().decode())

    token = encryption.encrypt("hubspot-refresh-token")

    assert "hubspot-refresh-token" not in token
    assert encryption.decrypt(token) == "hubspot-refresh-token"


def test_it_reads_old_secrets_after_a_key_rotation(keys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    keys(old)
    token = encryption.encrypt("secret")

    keys(new, old)

    assert encryption.decrypt(token) == "secret"


def test_it_explains_a_lost_key(keys):
    keys(Fernet.generate_key().decode())
    token = encryption.encrypt("secret")
    keys(Fernet.generate_key().decode())

    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        encryption.decrypt(token)
