import pytest

from tests.automations.receiver import WebhookReceiver


@pytest.fixture
def receiver(settings):
    settings.ALLOW_PRIVATE_URLS = True
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()
