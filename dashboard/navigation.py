"""The dashboard's pages, in navigation order: the one list the menu is drawn from.

A page's `url_name` is its index view in dashboard/urls.py; the page's other views are named
`<url_name>-<what>` (calls-detail) so the menu highlights the page for all of them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    label: str
    url_name: str
    summary: str  # one line: what a tenant admin does there

    def is_current(self, url_name: str | None) -> bool:
        if not url_name:
            return False
        return url_name == self.url_name or url_name.startswith(f"{self.url_name}-")


PAGES = (
    Page("Overview", "overview", "Live calls, today's counts and system health."),
    Page("Calls", "calls", "Every call with its timeline, callbacks, CRM logs and recording."),
    Page("Callbacks", "callbacks", "Where call results are pushed, signing secret, deliveries."),
    Page("CRM connections", "connections", "Connect CRMs, watch syncs, call-logging settings."),
    Page("Phonebook", "phonebook", "Search contacts by name, company or any number; import CSV."),
    Page("Agents & numbers", "agents", "Agents, their click-to-call links, caller-ID numbers."),
    Page("Routing", "routing", "Ordered smart-IVR rules, fallback, dry-run, routing URL."),
    Page("Telephony", "telephony", "Which engine places calls (simulator, Twilio); CRM frames."),
    Page("Apps", "apps", "After-call apps: webhooks, Slack, email, tickets, warehouse."),
    Page("API keys", "api-keys", "Server and browser keys, scopes, IP allowlists, revoke."),
    Page("Settings & team", "settings", "Region, time zone, team members, audit log."),
)
