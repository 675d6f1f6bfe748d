"""The webhook app (seed 004): templated HTTP requests with auth, retries and a dry run.

`config.WebhookConfig.from_settings` validates an app's JSON settings (and `split_secrets` /
`join_secrets` keep its secrets apart); `send.webhook_send(config, context)` renders and sends
it, returning every attempt and the answer's JSON for `app_data.<slug>.data`.
"""
