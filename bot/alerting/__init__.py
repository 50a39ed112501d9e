"""What a check means: account rules, the alert state machine, forecasts, the checks scheduler,
the digest's content and the outbox's bookkeeping. Produces plain events; the words and buttons
come from a renderer the wiring hands in (bot.telegram)."""
