"""Exports for sponsors, monitors and auditors."""
