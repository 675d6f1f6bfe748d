"""One adapter per CRM provider for the call-logging tests (start its strict fake, connect to
it, name a contact and the agent's user that exist there, read back what it stored), and the
phone system's events for one inbound call."""

from __future__ import annotations

import html
import math
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.models import Connection
from connectors.services import connection_create
from contacts.services import PhoneInput, contact_create
from core.scoping import tenant_scope
from fakes import salesforce_data
from fakes.activecampaign import FakeActiveCampaign
from fakes.copper import FakeCopper
from fakes.copper_data import PHONE_CALL_TYPE_ID
from fakes.dynamics import FakeDynamics
from fakes.generic_rest import FakeRestCrm
from fakes.hubspot import FakeHubSpot
from fakes.intercom import FakeIntercom
from fakes.intercom_data import ADMINS as INTERCOM_ADMINS
from fakes.keap import API as KEAP_API
from fakes.keap import FakeKeap
from fakes.pipedrive import FakePipedrive
from fakes.salesforce import FakeSalesforce
from fakes.sugarcrm import FakeSugarCrm
from fakes.sugarcrm_data import USERS as SUGAR_USERS
from fakes.zendesk import FakeZendesk
from fakes.zoho import FakeZoho
from tenants.models import Tenant
from tests.connectors.conftest import salesforce_credentials

AGENT_EMAIL = "priya.shah@example.com"  # the agent's login in every fake CRM

# One inbound call as the phone system reports it (seed 001).
CUSTOMER = "+447400123456"
DETAILS = {"call_id": "pbx-7731", "direction": "inbound", "from": "07400 123456",
           "to": "+442079460000", "crm_username": "agent.017"}  # fmt: skip
START = {"id": "e-start", "type": "call.start", "timestamp": "2026-07-03T10:00:00Z", **DETAILS}


def end(status: str = "ANSWER", duration: int = 150, **fields: str) -> dict:
    """The phone system's call.end, with what the seed says to send on it."""
    return {"id": "e-end", "type": "call.end", "status": status, "duration": duration,
            "start_time": "2026-07-03T10:00:00Z", "timestamp": "2026-07-03T10:02:39Z",
            **DETAILS, **fields}  # fmt: skip


class Crm:
    """How a test drives one provider's fake; `calls` and `tasks` map remote id -> fields."""

    provider: str
    fake: Any
    owner_id: str | None = None  # the agent's CRM user
    creates_contacts = True
    finds_lost_creates = True  # find_logged can search the CRM by our call id

    def credentials(self) -> dict[str, Any]:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {}

    def contact_id(self) -> str:
        """A contact of the fake (synced into our phonebook by the test)."""
        raise NotImplementedError

    def contacts(self) -> dict[str, str]:
        """The fake's contacts: external id -> the stored record as text."""
        raise NotImplementedError

    def calls(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def tasks(self) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        """Assert the call object carries the call's fields in the CRM's own words."""
        raise NotImplementedError

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        raise NotImplementedError

    def later_text(self, remote_id: str) -> str:
        """Where notes, a summary and the recording link added later show on the record."""
        raise NotImplementedError

    def stop(self) -> None:
        self.fake.stop()


class HubSpot(Crm):
    provider = "hubspot"

    def __init__(self) -> None:
        self.fake = FakeHubSpot(contacts=5)
        self.fake.start()
        self.owner_id = self.fake.add_owner(AGENT_EMAIL, "Priya", "Shah")

    def credentials(self) -> dict[str, Any]:
        return {
            "private_app_token": next(iter(self.fake.private_app_tokens)),
            "base_url": self.fake.url,
        }

    def contact_id(self) -> str:
        return str(min(self.fake.objects["contacts"]))

    def contacts(self) -> dict[str, str]:
        return {str(i): str(c.properties) for i, c in self.fake.objects["contacts"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return self.fake.written["calls"]

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.fake.written["tasks"]

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        props = stored["properties"]
        answered = call.status == "ANSWER"
        assert props["hs_call_direction"] == "INBOUND"
        assert props["hs_call_status"] == ("COMPLETED" if answered else "NO_ANSWER")
        assert props["hs_call_duration"] == str(call.duration * 1000)  # milliseconds
        assert (props["hs_call_from_number"], props["hs_call_to_number"]) == (
            call.customer_number,
            call.from_number,
        )
        assert props["hs_call_external_id"] == str(call.call_id)
        assert props["hs_timestamp"] == str(int(call.start_time.timestamp() * 1000))
        assert props["hubspot_owner_id"] == self.owner_id
        assert stored["associations"] == [{"to": "contacts", "id": contact_id, "typeId": 194}]

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        props = stored["properties"]
        assert (props["hs_task_type"], props["hs_task_status"], props["hs_task_priority"]) == (
            "CALL",
            "NOT_STARTED",
            "HIGH",
        )
        assert props["hubspot_owner_id"] == self.owner_id
        assert stored["associations"] == [{"to": "contacts", "id": contact_id, "typeId": 204}]

    def later_text(self, remote_id: str) -> str:
        props = self.fake.written["calls"][remote_id]["properties"]
        return f"{props['hs_call_body']}\n{props.get('hs_call_recording_url', '')}"


class Salesforce(Crm):
    provider = "salesforce"

    def __init__(self) -> None:
        self.fake = FakeSalesforce(contacts=5)
        self.fake.start()
        self.owner_id = salesforce_data.salesforce_id("User", 99)
        fields = {
            "Name": "Priya Shah",
            "Email": AGENT_EMAIL,
            "Username": AGENT_EMAIL,
            "IsActive": True,
        }
        self.fake.records["User"][self.owner_id] = salesforce_data.SObjectRecord(
            self.owner_id, fields, salesforce_data.BASE_MS, salesforce_data.BASE_MS
        )

    def credentials(self) -> dict[str, Any]:
        return salesforce_credentials(self.fake)

    def contact_id(self) -> str:
        return self.fake.ids("Contact")[0]

    def contacts(self) -> dict[str, str]:
        return {i: str(r.fields) for i, r in self.fake.records["Contact"].items()}

    def _tasks(self, subtype: str) -> dict[str, dict[str, Any]]:
        return {
            i: r.fields
            for i, r in self.fake.records["Task"].items()
            if r.fields.get("TaskSubtype") == subtype
        }

    def calls(self) -> dict[str, dict[str, Any]]:
        return self._tasks("Call")

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self._tasks("Task")

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert (stored["TaskSubtype"], stored["Status"], stored["CallType"]) == (
            "Call",
            "Completed",
            "Inbound",
        )
        assert stored["CallDisposition"] == ("Answered" if answered else "Missed")
        assert stored["CallDurationInSeconds"] == call.duration
        assert stored["CallObject"] == str(call.call_id)
        assert stored["ActivityDate"] == call.start_time.date().isoformat()
        assert (stored["WhoId"], stored["OwnerId"]) == (contact_id, self.owner_id)
        assert f"From {call.customer_number} to {call.from_number}." in stored["Description"]

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["TaskSubtype"], stored["Status"], stored["Priority"]) == (
            "Task",
            "Not Started",
            "High",
        )
        assert stored["CallObject"] == str(call.call_id)
        assert (stored["WhoId"], stored["OwnerId"]) == (contact_id, self.owner_id)

    def later_text(self, remote_id: str) -> str:
        return self.fake.records["Task"][remote_id].fields["Description"]


class Pipedrive(Crm):
    provider = "pipedrive"
    owner_id = "11"  # Priya in the fake's users
    finds_lost_creates = False

    def __init__(self) -> None:
        self.fake = FakePipedrive(persons=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        return {"api_token": next(iter(self.fake.api_tokens)), "base_url": self.fake.url}

    def contact_id(self) -> str:
        return str(min(self.fake.records["persons"]))

    def contacts(self) -> dict[str, str]:
        return {str(i): str(r.fields) for i, r in self.fake.records["persons"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return self.fake.call_logs

    def tasks(self) -> dict[str, dict[str, Any]]:
        # Every call log is also a done `call` activity; a missed call's task is an open one.
        return {str(i): a for i, a in self.fake.activities.items() if not a["done"]}

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert stored["outcome"] == ("connected" if answered else "no_answer")
        assert (stored["from_phone_number"], stored["to_phone_number"]) == (
            call.customer_number,
            call.from_number,
        )
        assert stored["duration"] == str(call.duration)
        assert stored["start_time"] == call.start_time.strftime("%Y-%m-%d %H:%M:%S")
        assert (stored["person_id"], stored["user_id"]) == (int(contact_id), int(self.owner_id))
        assert f"CallBridge call {call.call_id}" in stored["note"]
        activity = self.fake.activities[self.fake.call_log_activities[stored["id"]]]
        assert (activity["type"], activity["done"], activity["person_id"]) == (
            "call",
            True,
            int(contact_id),
        )

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["type"], stored["done"], stored["person_id"]) == (
            "call",
            False,
            int(contact_id),
        )
        assert stored["owner_id"] == int(self.owner_id)
        assert stored["due_date"] == call.start_time.strftime("%Y-%m-%d")

    def later_text(self, remote_id: str) -> str:
        # Call logs cannot be changed: the update goes to the call log's activity.
        activity = self.fake.activities[self.fake.call_log_activities[remote_id]]
        return re.sub(r"<[^>]+>", "\n", activity["note"])


class Zoho(Crm):
    provider = "zoho"
    owner_id = "4150868000000225027"  # Priya in the fake's users

    def __init__(self) -> None:
        self.fake = FakeZoho(contacts=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        tokens = self.fake.issue_tokens()
        return {
            "client_id": "1000.FAKECLIENTID",
            "client_secret": "fake-client-secret",
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
            "expires_at": time.time() + tokens["expires_in"],
            "accounts_url": self.fake.url,
            "api_domain": self.fake.url,
        }

    def contact_id(self) -> str:
        return str(self.fake.ids("Contacts", 0)[0])

    def contacts(self) -> dict[str, str]:
        return {str(i): str(r.fields) for i, r in self.fake.records["Contacts"].items()}

    def _module(self, module: str) -> dict[str, dict[str, Any]]:
        return {
            str(i): {**r.fields, "Owner": r.owner} for i, r in self.fake.records[module].items()
        }

    def calls(self) -> dict[str, dict[str, Any]]:
        return self._module("Calls")

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self._module("Tasks")

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert stored["Call_Type"] == ("Inbound" if answered else "Missed")
        minutes, seconds = divmod(call.duration, 60)
        assert stored["Call_Duration"] == f"{minutes:02d}:{seconds:02d}"
        assert stored["Call_Start_Time"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert (stored["Who_Id"], stored["Owner"]["id"]) == ({"id": contact_id}, self.owner_id)
        assert f"CallBridge call {call.call_id}" in stored["Description"]

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["Status"], stored["Priority"]) == ("Not Started", "High")
        assert stored["Due_Date"] == call.start_time.date().isoformat()
        assert (stored["Who_Id"], stored["Owner"]["id"]) == ({"id": contact_id}, self.owner_id)

    def later_text(self, remote_id: str) -> str:
        return self.fake.records["Calls"][int(remote_id)].fields["Description"]


class SugarCrm(Crm):
    provider = "sugarcrm"
    owner_id = SUGAR_USERS[1][0]  # Priya in the fake's users

    def __init__(self) -> None:
        self.fake = FakeSugarCrm(contacts=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        username, password = next(iter(self.fake.logins.items()))
        return {"instance_url": self.fake.url, "username": username, "password": password}

    def contact_id(self) -> str:
        return self.fake.ordered_ids("Contacts")[0]

    def contacts(self) -> dict[str, str]:
        return {i: str(r.fields) for i, r in self.fake.records["Contacts"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return {i: r.fields for i, r in self.fake.records["Calls"].items()}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {i: r.fields for i, r in self.fake.records["Tasks"].items()}

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert (stored["direction"], stored["status"]) == (
            "Inbound",
            "Held" if answered else "Not Held",
        )
        hours, minutes = divmod((call.duration + 59) // 60, 60)  # whole minutes, started counts
        assert (stored["duration_hours"], stored["duration_minutes"]) == (hours, minutes)
        assert stored["date_start"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert (stored["parent_type"], stored["parent_id"]) == ("Contacts", contact_id)
        assert stored["assigned_user_id"] == self.owner_id
        assert stored["description"].startswith(f"CallBridge call {call.call_id}\n")
        assert f"From {call.customer_number} to {call.from_number}." in stored["description"]

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["status"], stored["priority"]) == ("Not Started", "High")
        assert stored["date_due"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert (stored["parent_type"], stored["parent_id"]) == ("Contacts", contact_id)
        assert stored["assigned_user_id"] == self.owner_id

    def later_text(self, remote_id: str) -> str:
        # The call's description, and the Notes record under the call (the same notes).
        notes = [
            n.fields["description"]
            for n in self.fake.records["Notes"].values()
            if n.fields.get("parent_id") == remote_id
        ]
        assert len(notes) <= 1, "a second Notes record for one call"
        return "\n".join([self.fake.records["Calls"][remote_id].fields["description"], *notes])


class GenericRest(Crm):
    provider = "generic_rest"
    creates_contacts = False
    finds_lost_creates = False

    def __init__(self) -> None:
        self.fake = FakeRestCrm(contacts=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        return self.fake.credentials()

    def settings(self) -> dict[str, Any]:
        settings = self.fake.settings()
        settings["call_log"]["body"]["recording_url"] = "recording_url"
        return settings

    def contact_id(self) -> str:
        return "c-1"

    def calls(self) -> dict[str, dict[str, Any]]:
        return self.fake.calls

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.fake.calls  # no task endpoint: a missed call goes to the call-log endpoint

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert stored["external_call_id"] == str(call.call_id)
        assert (stored["contact_id"], stored["direction"]) == (contact_id, "inbound")
        assert (stored["duration"], stored["outcome"]) == (
            call.duration,
            "answered" if answered else "missed",
        )
        assert stored["started_at"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stored["numbers"] == {"from": call.customer_number, "to": call.from_number}

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        self.check_call(stored, call=call, contact_id=contact_id)

    def later_text(self, remote_id: str) -> str:
        stored = self.fake.calls[remote_id]
        return f"{stored['notes']}\n{stored.get('recording_url') or ''}"


class Copper(Crm):
    provider = "copper"
    owner_id = "137658"  # Priya in the fake's users

    def __init__(self) -> None:
        self.fake = FakeCopper(people=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        (api_key, email), *_ = self.fake.api_keys.items()
        return {"api_key": api_key, "user_email": email, "base_url": self.fake.url}

    def contact_id(self) -> str:
        return str(min(self.fake.records["people"]))

    def contacts(self) -> dict[str, str]:
        return {str(i): str(p) for i, p in self.fake.records["people"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return {str(i): a for i, a in self.fake.activities.items()}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {str(i): t for i, t in self.fake.tasks.items()}

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert stored["type"] == {"id": PHONE_CALL_TYPE_ID, "category": "user"}
        assert stored["parent"] == {"id": int(contact_id), "type": "person"}
        assert stored["user_id"] == int(self.owner_id)
        assert stored["activity_date"] == int(call.start_time.timestamp())
        minutes, seconds = divmod(call.duration, 60)
        outcome = "answered" if answered else "missed"
        assert f"Outcome: {outcome}; duration {minutes}:{seconds:02d}" in stored["details"]
        assert f"From {call.customer_number} to {call.from_number}" in stored["details"]
        assert stored["details"].endswith(f"CallBridge call {call.call_id}")

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["status"], stored["priority"]) == ("Open", "High")
        assert stored["related_resource"] == {"id": int(contact_id), "type": "person"}
        assert stored["assignee_id"] == int(self.owner_id)
        assert stored["due_date"] == int(call.start_time.timestamp())

    def later_text(self, remote_id: str) -> str:
        return str(self.fake.activities[int(remote_id)]["details"])


class Intercom(Crm):
    """Calls are notes on the contact; notes cannot be updated, so a change is a second note."""

    provider = "intercom"
    owner_id = INTERCOM_ADMINS[0]["id"]  # Priya in the fake's admins

    def __init__(self) -> None:
        self.fake = FakeIntercom(contacts=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        return {"access_token": next(iter(self.fake.tokens)), "base_url": self.fake.url}

    def contact_id(self) -> str:
        return min(self.fake.contacts)

    def contacts(self) -> dict[str, str]:
        return {i: str(c) for i, c in self.fake.contacts.items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        """The call notes (a later change's "Update to CallBridge call ..." notes are not calls)."""
        return {i: n for i, n in self.fake.notes.items() if not _lines(n)[0].startswith("Update")}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.fake.conversations

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert (stored["contact"]["id"], stored["author"]["id"]) == (contact_id, self.owner_id)
        minutes, seconds = divmod(call.duration, 60)
        outcome = "answered" if answered else "missed"
        lines = _lines(stored)
        assert f"Outcome: {outcome}; duration {minutes}:{seconds:02d}" in lines
        assert any(f"From {call.customer_number} to {call.from_number} at" in x for x in lines)
        assert lines[-1] == f"CallBridge call {call.call_id}"

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert stored["state"] == "open"
        assert stored["source"]["author"]["id"] == contact_id
        body = stored["source"]["body"].splitlines()
        assert body[0].startswith(f"Missed call from {call.customer_number} at")
        assert body[-1] == f"CallBridge call {call.call_id}"

    def later_text(self, remote_id: str) -> str:
        """The call's note, then the notes that tell what changed later (never an edit)."""
        first = self.fake.notes[remote_id]
        call_line = _lines(first)[-1]
        updates = [
            n
            for n in self.fake.notes_of(first["contact"]["id"])
            if _lines(n)[0] == f"Update to {call_line}:"
        ]
        return "\n".join("\n".join(_lines(note)) for note in [first, *updates])


def _lines(note: dict[str, Any]) -> list[str]:
    return [line for line in re.split(r"</?p>", html.unescape(note["body"])) if line]


class Keap(Crm):
    provider = "keap"
    owner_id = "7"  # Priya in the fake's users

    def __init__(self) -> None:
        self.fake = FakeKeap(contacts=5)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        return {"api_key": next(iter(self.fake.api_keys)), "base_url": self.fake.url + KEAP_API}

    def contact_id(self) -> str:
        return str(min(self.fake.records["contacts"]))

    def contacts(self) -> dict[str, str]:
        return {str(i): str(c) for i, c in self.fake.records["contacts"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return {str(i): n for i, n in self.fake.notes.items()}

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {str(i): t for i, t in self.fake.tasks.items()}

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert (stored["type"], stored["contact_id"]) == ("Call", contact_id)
        assert stored["user_id"] == self.owner_id
        minutes, seconds = divmod(call.duration, 60)
        outcome = "answered" if answered else "missed"
        assert f"Outcome: {outcome}; duration {minutes}:{seconds:02d}" in stored["text"]
        assert f"From {call.customer_number} to {call.from_number}" in stored["text"]
        assert stored["text"].endswith(f"CallBridge call {call.call_id}")

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["priority"], stored["completed"], stored["type"]) == (
            "ESSENTIAL",
            False,
            "Call",
        )
        assert (stored["contact_id"], stored["assigned_to_user_id"]) == (contact_id, self.owner_id)
        assert stored["due_time"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def later_text(self, remote_id: str) -> str:
        return str(self.fake.notes[int(remote_id)]["text"])


class ActiveCampaign(Crm):
    provider = "activecampaign"
    owner_id = "1"  # Priya in the fake's users
    finds_lost_creates = False  # notes and tasks cannot be searched by our call id

    def __init__(self) -> None:
        self.fake = FakeActiveCampaign(contacts=5, retry_after=1)
        self.fake.start()

    def credentials(self) -> dict[str, Any]:
        return {"api_url": self.fake.url, "api_token": next(iter(self.fake.api_tokens))}

    def contact_id(self) -> str:
        return str(min(self.fake.contacts))

    def contacts(self) -> dict[str, str]:
        return {str(i): str(vars(c)) for i, c in self.fake.contacts.items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return self.fake.notes  # no call object: a note on the contact

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.fake.tasks

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        answered = call.status == "ANSWER"
        assert (stored["reltype"], stored["relid"]) == ("Subscriber", contact_id)
        text = stored["note"]
        minutes, seconds = divmod(call.duration, 60)
        assert f"Inbound call {'answered' if answered else 'missed'}, " in text
        assert call.start_time.strftime("started %Y-%m-%d %H:%M:%S UTC") in text
        assert f"talk time {minutes}:{seconds:02d}." in text
        assert f"From {call.customer_number} to {call.from_number}." in text
        assert f"Agent: Priya Shah <{AGENT_EMAIL}>" in text  # the note's author is the token's
        assert text.endswith(f"CallBridge call {call.call_id}")

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert stored["owner"] == {"type": "contact", "id": contact_id}
        assert (stored["status"], stored["dealTasktype"]) == (0, "1")  # open, the Call type
        assert stored["assignee"] == self.owner_id
        assert datetime.fromisoformat(stored["duedate"]) == call.start_time
        assert f"CallBridge call {call.call_id}" in stored["note"]

    def later_text(self, remote_id: str) -> str:
        return str(self.fake.notes[remote_id]["note"])


class Dynamics(Crm):
    provider = "dynamics"

    def __init__(self) -> None:
        self.fake = FakeDynamics(contacts=5)
        self.fake.start()
        self.owner_id = next(
            user_id
            for user_id, row in self.fake.rows["systemusers"].items()
            if row.columns["internalemailaddress"] == AGENT_EMAIL
        )

    def credentials(self) -> dict[str, Any]:
        return self.fake.credentials()

    def contact_id(self) -> str:
        return self.fake.ids("contacts")[0]

    def contacts(self) -> dict[str, str]:
        return {key: str(row.columns) for key, row in self.fake.rows["contacts"].items()}

    def calls(self) -> dict[str, dict[str, Any]]:
        return self.fake.written("phonecalls")

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.fake.written("tasks")

    def _check_links(self, stored: dict[str, Any], contact_id: str) -> None:
        assert stored["regardingobjectid_contact@odata.bind"] == f"/contacts({contact_id})"
        assert stored["_ownerid_value"] == self.owner_id

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        outcome = "answered" if call.status == "ANSWER" else "missed"
        assert (stored["directioncode"], stored["phonenumber"]) == (False, call.customer_number)
        assert stored["actualdurationminutes"] == math.ceil(call.duration / 60)
        assert stored["actualstart"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert f"Outcome: {outcome}" in stored["description"]
        assert f"From {call.customer_number} to {call.from_number}." in stored["description"]
        assert stored["description"].endswith(f"CallBridge call {call.call_id}")
        self._check_links(stored, contact_id)

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert stored["prioritycode"] == 2  # High
        assert stored["scheduledend"] == call.start_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert stored["description"].endswith(f"CallBridge call {call.call_id}")
        self._check_links(stored, contact_id)

    def later_text(self, remote_id: str) -> str:
        return self.fake.written("phonecalls")[remote_id]["description"]


class Zendesk(Crm):
    """Calls are private comments on the caller's ticket: a ticket id is the remote id."""

    provider = "zendesk"

    def __init__(self) -> None:
        self.fake = FakeZendesk(users=5)
        self.fake.start()
        priya = self.fake.add_user("Priya Shah", role="agent", email=AGENT_EMAIL)
        self.owner_id = str(priya["id"])

    def credentials(self) -> dict[str, Any]:
        return self.fake.credentials()

    def contact_id(self) -> str:
        return min(self.contacts())

    def contacts(self) -> dict[str, str]:
        users = self.fake.users.values()
        return {str(u["id"]): str(u) for u in users if u["role"] == "end-user"}

    def _tickets(self, tagged: Callable[[str], bool]) -> dict[str, dict[str, Any]]:
        return {
            str(i): {**t, "comments": self.fake.comments[i]}
            for i, t in self.fake.tickets.items()
            if any(tagged(tag) for tag in t["tags"])
        }

    def calls(self) -> dict[str, dict[str, Any]]:
        return self._tickets(lambda tag: tag.startswith("callbridge_call_"))

    def tasks(self) -> dict[str, dict[str, Any]]:
        return self._tickets(lambda tag: tag == "callbridge_missed_call")

    def check_call(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert stored["requester_id"] == int(contact_id)
        (note,) = [c for c in stored["comments"] if f"CallBridge call {call.call_id}" in c["body"]]
        assert (note["public"], note["author_id"]) == (False, int(self.owner_id))
        minutes, seconds = divmod(call.duration, 60)
        outcome = "answered" if call.status == "ANSWER" else "missed"
        lines = note["body"].splitlines()
        assert lines[0] == f"Inbound call {outcome}, {minutes}:{seconds:02d}"
        assert lines[1] == (
            f"From {call.customer_number} to {call.from_number} at "
            f"{call.start_time.strftime('%Y-%m-%d %H:%M UTC')}"
        )
        assert lines[-1] == f"CallBridge call {call.call_id}"

    def check_task(self, stored: dict[str, Any], *, call: Any, contact_id: str) -> None:
        assert (stored["priority"], stored["external_id"]) == ("high", str(call.call_id))
        assert (stored["requester_id"], stored["assignee_id"]) == (
            int(contact_id),
            int(self.owner_id),
        )
        assert stored["comments"][0]["public"] is False

    def later_text(self, remote_id: str) -> str:
        # Comments cannot be edited: what came later is the newest comment naming the call.
        ours = [c for c in self.fake.comments[int(remote_id)] if "CallBridge call" in c["body"]]
        return str(ours[-1]["body"])


PROVIDERS: dict[str, type[Crm]] = {
    crm.provider: crm
    for crm in (
        HubSpot,
        Salesforce,
        Pipedrive,
        Zoho,
        GenericRest,
        Copper,
        Intercom,
        Keap,
        ActiveCampaign,
        Dynamics,
        SugarCrm,
        Zendesk,
    )
}


def connect(tenant: Tenant, crm: Crm) -> Connection:
    """A connection to the fake that logs calls, with the caller synced from it."""
    with tenant_scope(tenant):
        connection = connection_create(
            tenant=tenant,
            provider=crm.provider,
            name=crm.provider,
            credentials=crm.credentials(),
            settings={**crm.settings(), "call_logging": {"enabled": True}},
        )
        contact_create(
            tenant=tenant,
            source_connection=connection,
            external_id=crm.contact_id(),
            first_name="Ada",
            phones=[PhoneInput(CUSTOMER, "mobile")],
        )
    return connection
