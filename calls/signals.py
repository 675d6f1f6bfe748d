"""What calls tell the apps downstream (CRM logging, automations) without importing them.

Both are sent inside the transaction that changed the call, so a receiver's outbox rows commit
or roll back with the change.
"""

from django.dispatch import Signal

call_ended = Signal()  # call=: the call just reached its final state (sent once per call)
call_changed = Signal()  # call=: notes, disposition, a recording or analytics changed later
