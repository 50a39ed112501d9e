"""What several replicas of the bot share through Redis: the guard's per-login limits and the
outbox's pacing (one budget for the fleet, not one per replica). Loaded only with REDIS_URL,
but for bot.fleet.updates (no redis in it)."""
