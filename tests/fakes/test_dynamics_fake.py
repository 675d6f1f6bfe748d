"""The fake Dataverse is at least as strict as the real Web API (crm-apis.md section 6)."""

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from fakes.dynamics import CLIENT_ID, CLIENT_SECRET, FakeDynamics

NO_ROW = "00000000-0000-0000-0000-000000000000"
ODATA = {"OData-MaxVersion": "4.0", "OData-Version": "4.0", "Accept": "application/json"}


@pytest.fixture
def fake():
    server = FakeDynamics(contacts=7, accounts=2)
    server.start()
    server.token = server.issue_token()
    yield server
    server.stop()


def call(fake, method, path, body=None, headers=None, auth=True):
    """(status, JSON body or None, headers) of one request to the fake."""
    sent = {**ODATA, **({"Authorization": f"Bearer {fake.token}"} if auth else {})}
    data = None
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(  # noqa: S310 - the fake on loopback
        fake.url + path, method=method, data=data, headers={**sent, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, response.headers
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None, error.headers


def api(path: str, **query: str) -> str:
    encoded = urllib.parse.urlencode(query, quote_via=urllib.parse.quote, safe="$,")
    return f"/api/data/v9.2/{path}" + (f"?{encoded}" if query else "")


def token_request(fake, **form):
    fields = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": f"{fake.url}/.default",
        **form,
    }
    request = urllib.request.Request(  # noqa: S310
        f"{fake.url}/{fake.tenant_id}/oauth2/v2.0/token",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tokens_are_issued_for_the_org_default_scope_only(fake):
    status, tokens = token_request(fake)
    assert (status, tokens["token_type"], tokens["expires_in"]) == (200, "Bearer", 3599)

    status, refused = token_request(fake, scope="https://graph.microsoft.com/.default")
    assert (status, refused["error"]) == (400, "invalid_scope")
    status, refused = token_request(fake, client_secret="wrong")
    assert (status, refused["error"]) == (401, "invalid_client")
    assert refused["error_description"].startswith("AADSTS7000215")


def test_a_request_without_a_live_bearer_token_is_401_without_a_body(fake):
    status, body, headers = call(fake, "GET", api("contacts"), auth=False)
    assert (status, body) == (401, None)
    assert headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")

    fake.expire_tokens()
    assert call(fake, "GET", api("contacts"))[0] == 401


def test_odata_version_headers_are_required(fake):
    status, body, _ = call(fake, "GET", api("contacts"), headers={"OData-Version": "3.0"})

    assert status == 400 and "OData-Version" in body["error"]["message"]


def test_entity_sets_are_case_sensitive(fake):
    status, body, _ = call(fake, "GET", api("Contacts"))

    assert (status, body["error"]["code"]) == (404, "0x8006088a")
    assert body["error"]["message"] == "Resource not found for the segment 'Contacts'."


def test_an_unknown_column_is_refused_in_select_and_filter(fake):
    selected = call(fake, "GET", api("contacts", **{"$select": "fullname,phone"}))
    filtered = call(fake, "GET", api("contacts", **{"$filter": "phone eq '1'"}))

    for status, body, _ in (selected, filtered):
        assert (status, body["error"]["code"]) == (400, "0x0")
    assert selected[1]["error"]["message"] == (
        "Could not find a property named 'fullname' on type 'Microsoft.Dynamics.CRM.contact'."
    )


@pytest.mark.parametrize(
    "condition",
    ["(telephone1 eq '1')", "telephone1 eq 1 2", "substringof('1',telephone1)", "telephone1 = '1'"],
)
def test_a_filter_outside_the_supported_subset_is_a_syntax_error(fake, condition):
    status, body, _ = call(fake, "GET", api("contacts", **{"$filter": condition}))

    assert (status, body["error"]["code"]) == (400, "0x80060888")


def test_skip_and_other_options_are_refused(fake):
    assert call(fake, "GET", api("contacts", **{"$skip": "2"}))[0] == 400
    assert call(fake, "GET", api("contacts", **{"$orderby": "lastname"}))[0] == 400


def test_eq_matches_the_stored_text_in_any_case_and_ors_combine(fake):
    first, second = fake.ids("contacts")[:2]
    fake.rows["contacts"][first].columns["telephone1"] = "020 7946 0018"
    fake.rows["contacts"][second].columns["mobilephone"] = "+44 20 7946 0018"
    condition = "telephone1 eq '020 7946 0018' or mobilephone eq '+44 20 7946 0018'"

    _, body, _ = call(fake, "GET", api("contacts", **{"$filter": condition}))
    _, digits, _ = call(fake, "GET", api("contacts", **{"$filter": "telephone1 eq '02079460018'"}))

    assert {row["contactid"] for row in body["value"]} == {first, second}
    assert digits["value"] == []  # exact text, not digits


def test_pages_follow_maxpagesize_and_skiptokens_are_bound_to_their_query(fake):
    prefer = {"Prefer": "odata.maxpagesize=3"}
    status, first, headers = call(
        fake, "GET", api("contacts", **{"$select": "lastname"}), None, prefer
    )

    assert status == 200 and len(first["value"]) == 3
    assert headers["Preference-Applied"] == "odata.maxpagesize=3"
    next_link = first["@odata.nextLink"]
    assert "$skiptoken=" in next_link and "@odata.deltaLink" not in first
    _, second, _ = call(fake, "GET", next_link.removeprefix(fake.url), None, prefer)
    assert len(second["value"]) == 3
    other_query = next_link.removeprefix(fake.url).replace("lastname", "firstname")
    assert call(fake, "GET", other_query, None, prefer)[0] == 400
    too_big = {"Prefer": "odata.maxpagesize=5001"}
    assert call(fake, "GET", api("contacts"), None, too_big)[0] == 400


def test_change_tracking_answers_a_delta_link_then_changes_and_tombstones(fake):
    prefer = {"Prefer": "odata.track-changes"}
    _, baseline, _ = call(fake, "GET", api("contacts", **{"$select": "lastname"}), None, prefer)
    delta_link = baseline["@odata.deltaLink"].removeprefix(fake.url)
    edited, deleted = fake.ids("contacts")[:2]
    fake.touch("contacts", [edited])
    fake.delete("contacts", [deleted])

    _, delta, _ = call(fake, "GET", delta_link, None, prefer)

    assert baseline["@odata.context"].endswith("#contacts(lastname)/$delta")
    assert len(baseline["value"]) == 7 and "$deltatoken=" in delta_link
    assert [row.get("contactid") for row in delta["value"]] == [edited, None]
    assert delta["value"][1] == {
        "@odata.context": f"{fake.url}/api/data/v9.2/$metadata#contacts/$deletedEntity",
        "id": deleted,
        "reason": "deleted",
    }
    assert delta["@odata.deltaLink"] != baseline["@odata.deltaLink"]


def test_an_expired_delta_link_answers_410_and_filters_are_refused_with_tracking(fake):
    prefer = {"Prefer": "odata.track-changes"}
    _, baseline, _ = call(fake, "GET", api("contacts"), None, prefer)
    fake.expire_delta_links()

    status, _, _ = call(fake, "GET", baseline["@odata.deltaLink"].removeprefix(fake.url))
    filtered = call(fake, "GET", api("contacts", **{"$filter": "lastname eq 'x'"}), None, prefer)

    assert status == 410 and filtered[0] == 400


def test_service_protection_answers_429_with_retry_after(fake):
    fake.requests_per_window = 2
    statuses = [call(fake, "GET", api("systemusers"))[0] for _ in range(3)]
    status, body, headers = call(fake, "GET", api("systemusers"))

    assert statuses == [200, 200, 429] and status == 429
    assert body["error"]["code"] == "0x80072322" and int(headers["Retry-After"]) >= 1


def test_a_create_answers_204_with_the_rows_uri(fake):
    contact = fake.ids("contacts")[0]
    body = {"subject": "Call", "regardingobjectid_contact@odata.bind": f"/contacts({contact})"}

    status, answer, headers = call(fake, "POST", api("phonecalls"), body)

    assert (status, answer) == (204, None)
    (key,) = fake.written("phonecalls")
    assert headers["OData-EntityId"] == f"{fake.url}/api/data/v9.2/phonecalls({key})"
    assert fake.written("phonecalls")[key]["_regardingobjectid_value"] == contact


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"subject": "x", "duration": 3}, 400, "0x0"),  # no such column
        ({"actualdurationminutes": "3"}, 400, "0x0"),  # Int32, not a string
        ({"directioncode": 1}, 400, "0x0"),  # Boolean
        ({"description": "x" * 2001}, 400, "0x80044331"),  # past MaxLength
        ({"statecode": 1}, 400, "0x0"),  # SetState is its own message
        ({"regardingobjectid_contact@odata.bind": "/accounts(%s)"}, 400, "0x0"),  # wrong table
        ({"regardingobjectid_contact@odata.bind": f"/contacts({NO_ROW})"}, 404, "0x80040217"),
    ],
)  # fmt: skip
def test_a_write_dataverse_would_refuse_is_refused(fake, body, status, code):
    bind = "regardingobjectid_contact@odata.bind"
    if "%s" in str(body.get(bind, "")):
        body = {bind: body[bind] % fake.ids("accounts")[0]}

    answer_status, answer, _ = call(fake, "POST", api("phonecalls"), body)

    assert (answer_status, answer["error"]["code"]) == (status, code)
    assert fake.written("phonecalls") == {}


def test_patch_is_an_upsert_unless_if_match_star(fake):
    key = "5b1d1f2a-0c3e-4d5f-8a6b-7c8d9e0f1a2b"

    refused, answer, _ = call(fake, "PATCH", api(f"phonecalls({key})"), {"subject": "x"},
                              {"If-Match": "*"})  # fmt: skip
    assert (refused, answer["error"]["code"]) == (404, "0x80040217")
    assert call(fake, "PATCH", api(f"phonecalls({key})"), {"subject": "x"})[0] == 204
    assert fake.written("phonecalls")[key]["subject"] == "x"  # created by the PATCH


def test_a_key_that_is_not_a_guid_is_refused(fake):
    assert call(fake, "GET", api("contacts(42)"))[0] == 400


REDIRECT = "https://callbridge.example.com/cb"
DELEGATED = "{url}/user_impersonation offline_access"


def consent(fake, **params):
    """The authorize endpoint's redirect (Location) for these query parameters."""
    query = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "redirect_uri": REDIRECT,
        "response_mode": "query",
        "scope": DELEGATED.format(url=fake.url),
        "state": "st",
        **params,
    }
    url = f"{fake.url}/{fake.tenant_id}/oauth2/v2.0/authorize?{urllib.parse.urlencode(query)}"

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 302
        location = urllib.parse.urlsplit(error.headers["Location"])
        return location, dict(urllib.parse.parse_qsl(location.query))
    raise AssertionError("no redirect")


def code_grant(fake, code, **form):
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "scope": DELEGATED.format(url=fake.url),
        **form,
    }
    return token_request(fake, **fields)


def test_consent_redirects_back_with_a_code_and_the_state_or_the_error(fake):
    location, back = consent(fake)
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    assert back["state"] == "st" and fake.authorization_codes[back["code"]] == REDIRECT

    _, refused = consent(fake, scope=f"{fake.url}/.default")
    assert refused["error"] == "invalid_scope" and "code" not in refused


def test_a_code_is_taken_once_for_its_redirect_uri_and_the_delegated_scope(fake):
    _, back = consent(fake)
    status, no_scope = code_grant(fake, back["code"], scope=f"{fake.url}/.default")
    assert (status, no_scope["error"]) == (400, "invalid_scope")

    status, tokens = code_grant(fake, back["code"])
    assert (status, tokens["token_type"]) == (200, "Bearer") and tokens["refresh_token"]
    status, reused = code_grant(fake, back["code"])
    assert (status, reused["error"]) == (400, "invalid_grant")
    assert reused["error_description"].startswith("AADSTS54005")

    status, elsewhere = code_grant(fake, fake.authorize("https://evil.example/cb"))
    assert (status, elsewhere["error"]) == (400, "invalid_grant")
    status, made_up = code_grant(fake, "code-made-up")
    assert made_up["error_description"].startswith("AADSTS70000")
    status, wrong_secret = code_grant(fake, fake.authorize(REDIRECT), client_secret="nope")
    assert (status, wrong_secret["error"]) == (401, "invalid_client")


def test_refresh_tokens_rotate(fake):
    _, tokens = code_grant(fake, fake.authorize(REDIRECT))
    scope = DELEGATED.format(url=fake.url)

    status, renewed = token_request(
        fake, grant_type="refresh_token", refresh_token=tokens["refresh_token"], scope=scope
    )
    assert status == 200 and renewed["refresh_token"] != tokens["refresh_token"]
    assert (
        call(
            fake,
            "GET",
            api("contacts"),
            headers={"Authorization": f"Bearer {renewed['access_token']}"},
        )[0]
        == 200
    )

    status, old = token_request(
        fake, grant_type="refresh_token", refresh_token=tokens["refresh_token"], scope=scope
    )
    assert (status, old["error"]) == (400, "invalid_grant")
