"""Adverse events: recording, correction with a reason, the SAE sponsor reporting clock."""
