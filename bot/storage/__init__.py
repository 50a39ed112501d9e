"""The database: models, engine and migrations, history and chat queries, secrets at rest,
backups. No Telegram here."""
