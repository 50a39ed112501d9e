"""SMS Center: the HTTP client, its credentials and errors, and the per-login guard that keeps
the bot inside SMSC's limits. Knows nothing of Telegram or the database."""
