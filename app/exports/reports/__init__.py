"""Session reports and the study summary for monitors (docs/exports.md, "Session reports"):
what one dosing session looked like (``session_data``, drawn by ``chart`` and ``listing``) and
the study at a glance (``summary``), as PDF or PNG (``render``), behind ``endpoints``. Plotted
with matplotlib (Agg, no display); no arm, no note text, no participant name anywhere."""
