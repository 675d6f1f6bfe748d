import pytest

from calls.models import Call
from tenants.models import Agent, CallerIdNumber, Tenant
from tests.calls.receiver import CallbackReceiver

FROM_NUMBER = "+442079460000"
AGENT_NUMBER = "+447400000017"


@pytest.fixture
def caller_id(tenant: Tenant) -> CallerIdNumber:
    number = CallerIdNumber(tenant=tenant, number=FROM_NUMBER)
    number.save()
    return number


@pytest.fixture
def agent(tenant: Tenant) -> Agent:
    agent = Agent(tenant=tenant, crm_username="agent.017", phone_number=AGENT_NUMBER)
    agent.save()
    return agent


@pytest.fixture
def call_body(caller_id, agent) -> dict:
    """The seed 002 server-to-server body, written the way a CRM would."""
    return {
        "from_number": "020 7946 0000",
        "to_number": "07400 123456",
        "crm_username": "agent.017",
        "uuid": "crm-call-42",
    }


@pytest.fixture
def receiver():
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def private_urls(settings) -> None:
    settings.ALLOW_PRIVATE_URLS = True


@pytest.fixture
def place_call(api, call_body):
    """Place a call through the API and return it (the simulator is not run in-process)."""

    def place(**overrides: str) -> Call:
        response = api.post("/api/v1/calls", {**call_body, **overrides}, format="json")
        assert response.status_code == 201, response.json()
        return Call.objects.get(call_id=response.json()["call_id"])

    return place
