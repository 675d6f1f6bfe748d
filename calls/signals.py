"""What calls tell the apps downstream (CRM logging, automations) without importing them.

Both are sent inside the transaction that changed the call, so a receiver's outbox rows commit
or roll back with the change.
"""

from django.dispatch import Signal

call_started = Signal()  # call=: a call was placed, or a phone system reported a new one
call_ended = Signal()  # call=: the call just reached its final state (sent once per call)
call_analyzed = Signal()  # call=: analytics (satisfaction, resolved, summary...) arrived
call_changed = Signal()  # call=: notes, disposition, a recording or analytics changed later
