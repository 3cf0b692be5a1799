"""Walking a list route's pages as a client does."""

from typing import Any


def walk(client, url: str, limit: int = 50, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list, following next_cursor to the end."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        sent = params | {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = client.get(url, params=sent)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
