"""write_study_reports: the summary and every started session's report, as PDFs a reader
opens, in out_dir/reports/ (what the study package holds)."""

from pypdf import PdfReader

from app.exports.reports.service import write_study_reports


def test_the_summary_and_every_started_sessions_report_are_written(db, two_sites, tmp_path):
    written = write_study_reports(db, two_sites.study, tmp_path)
    assert [path.name for path in written] == [
        "MAPP-T-summary.pdf",
        "MAPP-T-01-001-EXP1-session-report.pdf",
        "MAPP-T-02-001-EXP1-session-report.pdf",
    ]
    assert all(path.parent == tmp_path / "reports" for path in written)
    pages = [len(PdfReader(path).pages) for path in written]
    assert pages == [2, 2, 2]
    assert "02-001" in PdfReader(written[2]).pages[0].extract_text()
