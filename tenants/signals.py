"""What the tenant domain announces to the contexts above it."""

from django.dispatch import Signal

# The tenant's owners were told something needs them (kwargs: tenant, subject, body): contexts
# with other ways to reach the tenant (its Slack apps) tell them there too.
owners_alerted = Signal()
