"""Every page of the web client declares its policy as the API's routes do (one ``Authorize``
in the decorator), so a page cannot show what the same caller could not read through the API."""

import pytest

from tests.auth.test_permission_matrix import APP, _policies, _routes

PAGES = _routes(APP, web=True)


def test_the_web_client_has_pages():
    assert {"GET /", "GET /login", "POST /login", "POST /logout"} <= {r.name for r in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda r: r.name)
def test_every_page_declares_exactly_one_policy(page):
    assert len(page.policies) == 1, f"{page.name} declares {page.policies or 'no policy'}"
    assert len(_policies(page.route.dependant)) == 1, f"{page.name}: a second policy"
