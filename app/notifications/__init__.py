"""Alerts beyond the screen: webhooks and e-mail through a transactional outbox."""
