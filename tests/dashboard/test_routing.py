"""Routing page: rules through the condition builder, order, dry run, fallback, routing URL."""

import secrets

import pytest

from core.scoping import tenant_scope
from routing.models import RoutingRule, RoutingToken
from tenants.models import AuditEntry

pytestmark = pytest.mark.django_db

ISOLATED_ROUTES = {
    "routing/",
    "routing/new",
    "routing/<int:pk>/edit",
    "routing/<int:pk>/delete",
    "routing/<int:pk>/move",
    "routing/dry-run",
    "routing/settings",
    "routing/token",
    "routing/token/delete",
}


def rule_form(**fields) -> dict:
    return {
        "submit_token": secrets.token_urlsafe(16),
        "name": "UK business hours",
        "is_enabled": "on",
        "action": "extension",
        "extension": "1093",
        **fields,
    }


def make_rule(tenant, name: str, position: int, **fields) -> RoutingRule:
    with tenant_scope(tenant):
        return RoutingRule.objects.create(
            tenant=tenant, name=name, position=position, action="extension", extension="1", **fields
        )


def test_the_builder_saves_every_kind_of_condition(admin_client, tenant):
    response = admin_client.post(
        "/app/routing/new",
        rule_form(
            known="yes",
            has_owner="no",
            field_1="tier",
            op_1="in",
            value_1="gold, platinum",
            field_2="language",
            op_2="equals",
            value_2="tr",
            number_prefixes="+44, +9021",
            countries="gb, ie",
            days=["mon", "fri"],
            start="09:00",
            end="17:30",
        ),
    )

    assert response.status_code == 302 and response.headers["Location"] == "/app/routing/"
    with tenant_scope(tenant):
        rule = RoutingRule.objects.get()
        entry = AuditEntry.objects.get()
    assert rule.conditions == {
        "known": True,
        "has_owner": False,
        "fields": [
            {"field": "tier", "op": "in", "value": ["gold", "platinum"]},
            {"field": "language", "op": "equals", "value": "tr"},
        ],
        "number_prefixes": ["+44", "+9021"],
        "countries": ["GB", "IE"],
        "time_window": {"days": ["mon", "fri"], "start": "09:00", "end": "17:30"},
    }
    assert (rule.action, rule.extension) == ("extension", "1093")
    assert entry.action == "routing_rule.create" and entry.target == "UK business hours"


def test_an_edit_shows_the_rule_in_the_builder_and_saves_changes(admin_client, tenant):
    rule = make_rule(
        tenant,
        "VIP",
        10,
        conditions={"fields": [{"field": "tier", "op": "equals", "value": "gold"}]},
    )

    page = admin_client.get(f"/app/routing/{rule.pk}/edit")
    response = admin_client.post(
        f"/app/routing/{rule.pk}/edit", rule_form(name="VIP", field_1="tier", value_1="platinum")
    )

    assert 'value="tier"' in page.text and 'value="gold"' in page.text
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.conditions == {"fields": [{"field": "tier", "op": "equals", "value": "platinum"}]}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"number_prefixes": "44"}, "number_prefixes", "must be '+' and 1 to 15 digits"),
        ({"countries": "Britain"}, "countries", "ISO 3166 country code"),
        ({"start": "09:00"}, "end", "must be a time such as 09:00"),
        ({"field_1": "tier"}, "value_1", "must be 1 to 200 characters"),
        ({"action": "queue", "extension": ""}, "queue", "A 'queue' action needs queue."),
        ({"action": "agent"}, "agent", "An 'agent' action needs agent."),
    ],
)
def test_bad_conditions_and_actions_are_errors_beside_their_field(
    admin_client, tenant, fields, field, message
):
    response = admin_client.post("/app/routing/new", rule_form(**fields))

    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    with tenant_scope(tenant):
        assert not RoutingRule.objects.exists()


def test_a_double_submitted_rule_is_created_once(admin_client, tenant):
    form = rule_form()

    first = admin_client.post("/app/routing/new", form)
    second = admin_client.post("/app/routing/new", form)

    assert first.status_code == 302 and second.status_code == 200
    assert "already submitted" in second.text
    with tenant_scope(tenant):
        assert RoutingRule.objects.count() == 1


def test_rules_move_up_and_down(admin_client, tenant):
    first, _, third = (make_rule(tenant, name, 0) for name in ("a", "b", "c"))

    admin_client.post(f"/app/routing/{third.pk}/move", {"direction": "up"})
    admin_client.post(f"/app/routing/{first.pk}/move", {"direction": "up"})  # first already
    admin_client.post(f"/app/routing/{first.pk}/move", {"direction": "down"})

    with tenant_scope(tenant):
        names = list(RoutingRule.objects.order_by("position").values_list("name", flat=True))
    assert names == ["c", "a", "b"]


def test_a_rule_is_deleted_after_confirming(admin_client, tenant):
    rule = make_rule(tenant, "Old", 10)

    confirm = admin_client.get(f"/app/routing/{rule.pk}/delete")
    response = admin_client.post(f"/app/routing/{rule.pk}/delete")

    assert "Delete the rule “Old”?" in confirm.text
    assert response.status_code == 302
    with tenant_scope(tenant):
        assert not RoutingRule.objects.exists()


def test_the_dry_run_names_the_rule_and_each_conditions_result(viewer_client, tenant):
    make_rule(tenant, "Germany", 10, conditions={"number_prefixes": ["+49"]})
    make_rule(tenant, "UK", 20, conditions={"countries": ["GB"]})

    response = viewer_client.get(
        "/app/routing/dry-run", {"caller": "020 4520 5757", "at": "2026-12-07T10:00"}
    )

    assert response.status_code == 200
    assert "rule “UK”" in response.text
    assert "number starts with +49" in response.text and "number is +442045205757" in response.text
    assert "number is from GB" in response.text
    dry_run = response.context["dry_run"]
    assert [r.matched for r in dry_run.results] == [False, True]
    assert f"{dry_run.call.now:%Y-%m-%d %H:%M}" == "2026-12-07 10:00"  # the tenant's zone


def test_the_dry_run_answers_only_the_result_for_htmx(viewer_client, tenant):
    response = viewer_client.get(
        "/app/routing/dry-run", {"caller": "+442045205757"}, headers={"HX-Request": "true"}
    )

    assert response.text.lstrip().startswith('<div id="dry-run-result"')
    assert "fallback" in response.text and "no rules enabled" in response.text


def test_a_dry_run_of_a_non_number_is_a_form_error(viewer_client):
    response = viewer_client.get("/app/routing/dry-run", {"caller": "hello"})

    assert response.status_code == 200
    assert (
        "Caller 'hello' is not a phone number." in response.context["dry_run_form"].errors["caller"]
    )


def test_fallback_and_deadline_are_saved_with_the_apis_validation(admin_client, tenant):
    bad = admin_client.post(
        "/app/routing/settings",
        {"submit_token": "t" * 20, "routing_fallback_extension": "100", "routing_deadline_ms": 5},
    )
    good = admin_client.post(
        "/app/routing/settings",
        {"submit_token": "u" * 20, "routing_fallback_extension": "100", "routing_deadline_ms": 250},
    )

    assert bad.status_code == 200
    assert bad.context["settings_form"].errors["routing_deadline_ms"]
    assert good.status_code == 302
    tenant.refresh_from_db()
    assert (tenant.routing_settings.fallback_extension, tenant.routing_settings.deadline_ms) == (
        "100",
        250,
    )


def test_the_routing_url_is_shown_once_and_can_be_turned_off(admin_client, tenant):
    created = admin_client.post("/app/routing/token")
    later = admin_client.get("/app/routing/")
    off = admin_client.post("/app/routing/token/delete")

    url = created.context["routing_url"]
    assert "/api/v1/routing/decide/cbr_" in url and url in created.text
    assert created.headers["Cache-Control"] == "no-store"
    assert url not in later.text and "Regenerate URL" in later.text
    assert off.status_code == 302
    with tenant_scope(tenant):
        assert not RoutingToken.objects.exists()


def test_a_viewer_sees_no_write_control_and_is_refused(viewer_client, tenant):
    rule = make_rule(tenant, "VIP", 10)

    page = viewer_client.get("/app/routing/")
    writes = [
        viewer_client.post("/app/routing/new", rule_form()),
        viewer_client.post(f"/app/routing/{rule.pk}/edit", rule_form()),
        viewer_client.post(f"/app/routing/{rule.pk}/delete"),
        viewer_client.post(f"/app/routing/{rule.pk}/move", {"direction": "up"}),
        viewer_client.post("/app/routing/settings", {"routing_deadline_ms": 100}),
        viewer_client.post("/app/routing/token"),
        viewer_client.post("/app/routing/token/delete"),
    ]

    assert "VIP" in page.text
    assert "Add a rule" not in page.text and "/edit" not in page.text
    assert 'action="/app/routing/token"' not in page.text
    assert [w.status_code for w in writes] == [403] * len(writes)


def test_another_tenants_member_sees_none_of_the_rules(other_client, tenant):
    rule = make_rule(tenant, "Acme secret rule", 10)
    with tenant_scope(tenant):
        RoutingToken.objects.create(tenant=tenant, prefix="cbr_acme0000", secret_hash="x" * 64)

    page = other_client.get("/app/routing/")
    responses = [
        other_client.get(f"/app/routing/{rule.pk}/edit"),
        other_client.get(f"/app/routing/{rule.pk}/delete"),
        other_client.post(f"/app/routing/{rule.pk}/edit", rule_form()),
        other_client.post(f"/app/routing/{rule.pk}/delete"),
        other_client.post(f"/app/routing/{rule.pk}/move", {"direction": "up"}),
    ]
    dry_run = other_client.get("/app/routing/dry-run", {"caller": "+442045205757"})
    other_client.post("/app/routing/token/delete")
    other_client.post(
        "/app/routing/settings", {"submit_token": "v" * 20, "routing_deadline_ms": 99}
    )

    assert "Acme secret rule" not in page.text and "cbr_acme0000" not in page.text
    assert [r.status_code for r in responses] == [404] * len(responses)
    assert "Acme secret rule" not in dry_run.text
    with tenant_scope(tenant):
        assert (
            RoutingToken.objects.exists() and RoutingRule.objects.get().name == "Acme secret rule"
        )
    tenant.refresh_from_db()
    assert tenant.routing_settings.deadline_ms == 300


@pytest.mark.integration
def test_in_a_browser_an_admin_adds_a_rule_and_dry_runs_it(signed_in_page, tenant, live_server):
    from playwright.sync_api import expect

    page = signed_in_page(tenant, "admin")
    page.goto(f"{live_server.url}/app/routing/")
    expect(page.get_by_text("No routing rules yet")).to_be_visible()
    page.get_by_role("link", name="Add a rule").first.click()
    page.get_by_label("Name").fill("UK callers")
    page.get_by_label("Calling number's country").fill("GB")
    page.get_by_label("Extension").fill("2001")
    page.get_by_role("button", name="Add rule").click()

    expect(page.get_by_text("Rule “UK callers” added")).to_be_visible()
    expect(page.get_by_role("cell", name="number is from GB")).to_be_visible()
    page.get_by_label("Calling number").fill("020 4520 5757")
    page.get_by_role("button", name="Run").click()

    result = page.locator("#dry-run-result")
    expect(result).to_contain_text("rule “UK callers”")
    expect(result).to_contain_text("extension 2001")
    expect(result).to_contain_text("number is from GB")
    assert page.url == f"{live_server.url}/app/routing/"  # htmx swapped the result in place


@pytest.mark.integration
def test_in_a_browser_a_viewer_dry_runs_but_cannot_change_routing(
    signed_in_page, tenant, live_server
):
    from playwright.sync_api import expect

    make_rule(tenant, "UK callers", 10, conditions={"countries": ["GB"]})
    page = signed_in_page(tenant, "viewer")
    page.goto(f"{live_server.url}/app/routing/")

    expect(page.get_by_role("cell", name="UK callers")).to_be_visible()
    expect(page.get_by_role("link", name="Add a rule")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate URL")).to_have_count(0)
    page.get_by_label("Calling number").fill("+442045205757")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#dry-run-result")).to_contain_text("rule “UK callers”")

    # A write sent anyway (the session's own cookie and CSRF token) is refused by the server.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    refused = page.request.post(
        f"{live_server.url}/app/routing/token", form={"csrfmiddlewaretoken": csrf}
    )
    assert refused.status == 403 and "This needs the admin role" in refused.text()
    with tenant_scope(tenant):
        assert not RoutingToken.objects.exists()
