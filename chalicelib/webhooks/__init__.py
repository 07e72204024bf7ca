"""Signed completion webhooks: settings, the EventBridge rule, delivery and its SSRF guard."""
