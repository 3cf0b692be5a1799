"""Assessments: the C-SSRS screen and blinding-guess forms."""
