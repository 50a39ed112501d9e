"""The bot watching itself: Prometheus metrics, health and the dead-man's switch heartbeat."""
