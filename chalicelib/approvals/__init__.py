"""Approvals inbox: a workflow's human step waits here under an opaque id until a person answers it.

triggers.py is read when app.py is imported (light); settings, messages, store, inbox,
consumer and closer only when an approvals route or handler runs.
"""
