"""The fake Salesforce is at least as strict as the real API (crm-apis.md section 2)."""

import json
import urllib.error
import urllib.request
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest

from fakes.salesforce import FakeSalesforce, Fault

API = "/services/data/v59.0"


@pytest.fixture(scope="module")
def fake():
    server = FakeSalesforce(contacts=2500, accounts=2, leads=2)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token(fake) -> str:
    return fake.issue_tokens()["access_token"]


def call(fake, method, path, token=None, body=None, headers=None, form=None):
    data, all_headers = None, dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        data, all_headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data = urlencode(form).encode()
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path, method=method, data=data, headers=all_headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), dict(error.headers)


def query(fake, token, soql, **headers):
    return call(fake, "GET", f"{API}/query?q={quote(soql)}", token, headers=headers)


def test_the_api_lives_under_a_supported_version_path(fake, token):
    assert query(fake, token, "SELECT Id FROM Account")[0] == 200
    status, body, _ = call(fake, "GET", "/services/data/v99.0/query?q=x", token)
    assert status == 404 and body == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert call(fake, "GET", "/services/data/query?q=x", token)[0] == 404


@pytest.mark.parametrize("credential", [None, "made-up", "expired"])
def test_a_missing_unknown_or_expired_session_is_invalid_session_id(fake, credential):
    if credential == "expired":
        credential = fake.issue_tokens(expires_in=-1)["access_token"]

    status, body, _ = query(fake, credential, "SELECT Id FROM Account")

    assert status == 401
    assert body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT COUNT() FROM Contact",
        "SELECT Id FROM Contact WHERE LastName LIKE 'A%'",
        "SELECT Id FROM Contact WHERE SystemModstamp >= 2024-01-01T00:00:00.000Z",
        "SELECT Id FROM Contact WHERE SystemModstamp >= '2024-01-01T00:00:00Z' OR Id = 'x'",
        "SELECT Id, (SELECT Id FROM Cases) FROM Contact",
        "DELETE FROM Contact",
    ],
)
def test_soql_it_does_not_understand_is_malformed(fake, token, soql):
    status, body, _ = query(fake, token, soql)

    assert status == 400 and body[0]["errorCode"] == "MALFORMED_QUERY"


def test_unknown_columns_and_objects_are_refused_like_salesforce(fake, token):
    status, body, _ = query(fake, token, "SELECT Id, Tier__c FROM Lead")
    assert status == 400 and body[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Tier__c' on entity 'Lead'" in body[0]["message"]

    quoted = "SELECT Id FROM Contact WHERE SystemModstamp >= '2024-01-01T00:00:00Z'"
    status, body, _ = query(fake, token, quoted)
    assert status == 400 and "should not be enclosed in quotes" in body[0]["message"]

    status, body, _ = query(fake, token, "SELECT Id FROM Opportunity")
    assert status == 400 and body[0]["errorCode"] == "INVALID_TYPE"


def test_batches_hold_at_most_2000_records_and_page_through_next_records_url(fake, token):
    assert (
        query(fake, token, "SELECT Id FROM Contact", **{"Sforce-Query-Options": "batchSize=2001"})[
            0
        ]
        == 400
    )

    status, first, headers = query(fake, token, "SELECT Id FROM Contact ORDER BY Id")
    assert status == 200 and first["totalSize"] == 2500 and first["done"] is False
    assert len(first["records"]) == 2000
    assert first["records"][0]["attributes"]["type"] == "Contact"
    assert first["nextRecordsUrl"].startswith(f"{API}/query/01g")
    assert headers["Sforce-Limit-Info"].startswith("api-usage=")

    status, rest, _ = call(fake, "GET", first["nextRecordsUrl"], token)
    assert status == 200 and rest["done"] is True and len(rest["records"]) == 500
    assert "nextRecordsUrl" not in rest
    status, body, _ = call(fake, "GET", first["nextRecordsUrl"], token)  # closed when done
    assert status == 400 and body[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_datetime_filters_are_unquoted_iso_and_ordered_by_system_modstamp(fake, token):
    soql = (
        "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= 2023-11-15T00:00:00Z "
        "ORDER BY SystemModstamp, Id"
    )
    status, body, _ = query(fake, token, soql)

    stamps = [r["SystemModstamp"] for r in body["records"]]
    assert status == 200 and stamps == sorted(stamps) and stamps[0] >= "2023-11-15T00:00:00"
    assert stamps[0].endswith(".000+0000")


def test_phone_search_is_sosl_in_phone_fields_only(fake, token):
    status, body, _ = call(
        fake, "GET", f"{API}/search/?q={quote('FIND {Ada} RETURNING Contact')}", token
    )
    assert status == 400 and body[0]["errorCode"] == "MALFORMED_SEARCH"

    sosl = 'FIND {"2079460018"} IN PHONE FIELDS RETURNING Contact(Id, Phone), Lead(Id)'
    status, body, _ = call(fake, "GET", f"{API}/search/?q={quote(sosl)}", token)
    assert status == 200 and isinstance(body["searchRecords"], list)

    unescaped = 'FIND {"+44 20 7946 0018"} IN PHONE FIELDS RETURNING Contact(Id)'
    status, body, _ = call(fake, "GET", f"{API}/search/?q={quote(unescaped)}", token)
    assert status == 400 and body[0]["errorCode"] == "MALFORMED_SEARCH"


def test_phone_search_matches_the_stored_text_exactly(fake, token):
    first, second = fake.ids("Contact")[:2]
    fake.records["Contact"][first].fields["Phone"] = "+44 20 7946 0018"
    fake.records["Contact"][second].fields["MobilePhone"] = "020 7946 0018"  # as typed

    def found(terms: str) -> set[str]:
        sosl = f"FIND {{{terms}}} IN PHONE FIELDS RETURNING Contact(Id)"
        status, body, _ = call(fake, "GET", f"{API}/search/?q={quote(sosl)}", token)
        assert status == 200, body
        return {record["Id"] for record in body["searchRecords"]}

    assert found('"2079460018" OR "442079460018"') == set()
    assert found(r'"\+44 20 7946 0018"') == {first}
    assert found(r'"\+44 20 7946 0018" OR "020 7946 0018"') == {first, second}


def test_task_writes_are_validated_field_by_field(fake, token):
    def create(fields):
        return call(fake, "POST", f"{API}/sobjects/Task", token, body=fields)

    assert create({"Subject": "x", "Duration__c": 3})[1][0]["errorCode"] == "INVALID_FIELD"
    assert (
        create({"CallType": "Sideways"})[1][0]["errorCode"]
        == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    )
    assert create({"CallDurationInSeconds": "95"})[1][0]["errorCode"] == "JSON_PARSER_ERROR"
    assert create({"WhoId": "not-an-id"})[1][0]["errorCode"] == "MALFORMED_ID"
    status, created, _ = create({"Subject": "Call", "TaskSubtype": "Call", "CallType": "Inbound"})
    assert status == 201 and created["success"] is True and created["errors"] == []

    status, body, _ = call(
        fake, "PATCH", f"{API}/sobjects/Task/{created['id']}", token, body={"TaskSubtype": "Task"}
    )
    assert status == 400 and body[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert body[0]["fields"] == ["TaskSubtype"]
    status, body, _ = call(
        fake, "PATCH", f"{API}/sobjects/Task/{created['id']}", token, body={"Subject": "Done"}
    )
    assert status == 204 and body is None
    assert fake.records["Task"][created["id"]].fields["Subject"] == "Done"


def test_a_contact_needs_a_last_name(fake, token):
    status, body, _ = call(fake, "POST", f"{API}/sobjects/Contact", token, body={"Phone": "1"})

    assert status == 400
    assert body == [
        {
            "message": "Required fields are missing: ['LastName']",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]


def test_past_the_daily_allocation_every_call_is_a_403_request_limit_exceeded():
    fake = FakeSalesforce(daily_limit=1)
    fake.start()
    try:
        token = fake.issue_tokens()["access_token"]
        first = query(fake, token, "SELECT Id FROM Account")
        second = query(fake, token, "SELECT Id FROM Account")
    finally:
        fake.stop()

    assert first[0] == 200 and first[2]["Sforce-Limit-Info"] == "api-usage=1/1"
    assert second[0] == 403
    assert second[1] == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]


def test_the_web_server_flow_gives_a_single_use_code_bound_to_its_redirect_uri(fake):
    authorize = urlencode(
        {
            "response_type": "code",
            "client_id": "fake-client-id",
            "redirect_uri": "https://cb.example.com/cb",
            "state": "s1",
        }
    )
    request = urllib.request.Request(fake.url + "/services/oauth2/authorize?" + authorize)  # noqa: S310

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as redirect:
        urllib.request.build_opener(NoRedirect).open(request, timeout=10)
    location = urlsplit(redirect.value.headers["Location"])
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert redirect.value.code == 302 and back["state"] == "s1"

    form = {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": "https://cb.example.com/cb",
        "client_id": "fake-client-id",
        "client_secret": "fake-client-secret",
    }
    status, tokens, _ = call(fake, "POST", "/services/oauth2/token", form=form)
    assert status == 200 and tokens["instance_url"] == fake.url and tokens["refresh_token"]
    assert tokens["token_type"] == "Bearer" and "expires_in" not in tokens
    status, again, _ = call(fake, "POST", "/services/oauth2/token", form=form)
    assert status == 400 and again["error"] == "invalid_grant"


def test_rotating_refresh_tokens_work_once():
    fake = FakeSalesforce(rotate_refresh_tokens=True)
    fake.start()
    try:
        refresh = fake.issue_tokens()["refresh_token"]
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "fake-client-id",
            "client_secret": "fake-client-secret",
        }
        first = call(fake, "POST", "/services/oauth2/token", form=form)
        second = call(fake, "POST", "/services/oauth2/token", form=form)
        wrong_secret = call(
            fake, "POST", "/services/oauth2/token", form={**form, "client_secret": "nope"}
        )
    finally:
        fake.stop()

    assert first[0] == 200 and first[1]["refresh_token"] != refresh
    assert second[0] == 400 and second[1] == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert wrong_secret[1]["error"] == "invalid_client"


def test_faults_are_injected_per_test(fake, token):
    fake.inject(Fault("status", times=1, status=503, retry_after="2"))
    fake.inject(Fault("request_limit", times=1))

    unavailable = query(fake, token, "SELECT Id FROM Account")
    limited = query(fake, token, "SELECT Id FROM Account")

    assert unavailable[0] == 503 and unavailable[2]["Retry-After"] == "2"
    assert limited[0] == 403 and limited[1][0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert query(fake, token, "SELECT Id FROM Account")[0] == 200
