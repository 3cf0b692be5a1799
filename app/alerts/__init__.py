"""Alerts: raised from findings, acknowledged, escalated and resolved; announced to the live
streams of every process once committed (app/events/signals.py, installed by app.listeners)."""
