"""``GET /api/v1/suppression-list``: filters, list encodings, dates, cursor paging (SPEC A.5, B §11.4-11.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/suppression-list"
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def entries(db):
    """Five entries, updated an hour apart from T0 (a0 oldest)."""
    from suppression.models import SuppressionEntry

    rows = [
        ("a0@example.com", "transactional", "Manually Added", "first one"),
        ("a1@example.com", "non_transactional", "List Unsubscribe", "Unsubscribed using list unsubscribe header"),
        ("a2@example.com", "transactional", "Bounce Rule", "550: no such user"),
        ("a3@example.com", "non_transactional", "Unsubscribe Link", "clicked"),
        ("a4@example.com", "non_transactional", "Manually Added", "Imported"),
    ]
    for index, (recipient, kind, source, description) in enumerate(rows):
        entry = SuppressionEntry.objects.create(recipient=recipient, type=kind, source=source, description=description)
        stamp = T0 + timedelta(hours=index)
        SuppressionEntry.objects.filter(pk=entry.pk).update(created=stamp, updated=stamp)
    return [row[0] for row in rows]


def search(api, query=""):
    response = api.get(f"{URL}{query}")
    assert response.status_code == 200, response.content
    return response.json()


def recipients(body):
    return [entry["recipient"] for entry in body["results"]]


def test_newest_first_by_default_and_asc_on_request(api, entries):
    body = search(api)
    assert recipients(body) == entries[::-1]
    assert body["total_count"] == 5 and body["links"] == []
    assert recipients(search(api, "?sort=asc")) == entries


@pytest.mark.parametrize(
    "query",
    [
        "?types=transactional",
        "?types=transactional&types=transactional",
        "?types[0]=transactional",
        "?types%5B0%5D=transactional",
    ],
)
def test_types_as_a_comma_list_repeated_keys_or_brackets(api, entries, query):
    assert recipients(search(api, query)) == ["a2@example.com", "a0@example.com"]


@pytest.mark.parametrize(
    "query",
    [
        "?sources=Bounce%20Rule,List%20Unsubscribe",
        "?sources=Bounce+Rule&sources=List+Unsubscribe",
        "?sources[0]=bounce_rule&sources[1]=list unsubscribe",
    ],
)
def test_sources_in_every_encoding(api, entries, query):
    assert recipients(search(api, query)) == ["a2@example.com", "a1@example.com"]


def test_every_filter_together(api, entries):
    query = "?types=non_transactional&sources=Manually%20Added,Unsubscribe%20Link&description=IMPORT"
    assert recipients(search(api, query)) == ["a4@example.com"]


@pytest.mark.parametrize(
    "bounds",
    [
        "from=2024-05-01T13:00&to=2024-05-01T15:00",
        "from=2024-05-01T13:00:00Z&to=2024-05-01T15:00:00Z",
        "from=2024-05-01T15:00:00%2B0200&to=2024-05-01T17:00:00%2B02:00",
        "from=2024-05-01T15:00:00+0200&to=2024-05-01T17:00:00+02:00",  # an unencoded + arrives as a space
        "from=2024-05-01T09:00:00-0400&to=2024-05-01 11:00:00-04:00",
    ],
)
def test_from_and_to_are_inclusive_and_utc_unless_an_offset_is_given(api, entries, bounds):
    assert recipients(search(api, f"?{bounds}")) == ["a3@example.com", "a2@example.com", "a1@example.com"]


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("?from=yesterday", "from must be a valid date"),
        ("?to=2024-13-01T00:00", "to must be a valid date"),
        ("?from=2024-05-02T00:00&to=2024-05-01T00:00", "from must not be after to"),
        ("?types=both", "types"),
        ("?types[3]=bogus", "types"),
        ("?sources=Nobody", "sources"),
        ("?per_page=0", "per_page"),
        ("?per_page=10001", "per_page"),
        ("?limit=abc", "limit"),
        ("?sort=up", "sort"),
        ("?cursor=not-a-cursor", "cursor"),
    ],
)
def test_bad_parameters_are_400_1200_naming_them(api, entries, query, where):
    error = assert_error(api.get(f"{URL}{query}"), 400, "1200")
    assert where in error["description"]


def test_cursor_paging_follows_next_until_the_last_page(api, entries):
    body = search(api, "?per_page=2&types=transactional,non_transactional")
    seen = recipients(body)
    assert body["total_count"] == 5
    assert [link["rel"] for link in body["links"]] == ["first", "next"]
    while nxt := [link for link in body["links"] if link["rel"] == "next"]:
        assert nxt[0]["href"].startswith("/api/v1/suppression-list?")
        body = search(api, nxt[0]["href"].removeprefix(URL))
        assert body["total_count"] == 5
        seen += recipients(body)
    assert seen == entries[::-1]
    assert [link["rel"] for link in body["links"]] == ["first"]


def test_cursor_paging_ascending_and_with_equal_timestamps(api, entries):
    from suppression.models import SuppressionEntry

    SuppressionEntry.objects.update(updated=T0)
    seen, query = [], "?per_page=2&sort=asc&cursor=initial"
    while True:
        body = search(api, query)
        seen += recipients(body)
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        if not nxt:
            break
        query = nxt[0].removeprefix(URL)
    assert sorted(seen) == sorted(entries) and len(seen) == 5


def test_limit_is_the_legacy_per_page(api, entries):
    assert len(search(api, "?limit=3")["results"]) == 3
    assert len(search(api, "?limit=3&per_page=4")["results"]) == 4


def test_search_is_two_queries_whatever_the_page_size(api, entries, django_assert_num_queries):
    with django_assert_num_queries(3):  # the key, the count, the page
        assert len(search(api, "?per_page=10000")["results"]) == 5


def test_an_empty_list_answers_an_empty_page(api):
    assert search(api) == {"results": [], "links": [], "total_count": 0}


def _cursor(stamp: str, pk: int = 1) -> str:
    from mailcore.cursors import cursor_encode

    return cursor_encode(datetime.fromisoformat(stamp), pk)


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ("?from=2026-06-01T00:00-16:00", "from"),
        ("?to=2026-06-01T00:00%2B23:59", "to"),
        ("?to=2026-06-01T00:00 2359", "to"),
        ("?from=2026-06-01T00:00:00-15:59:59.5", "from"),
        (f"?cursor={_cursor('2026-06-01T00:00+23:00')}", "cursor"),
    ],
)
def test_an_offset_postgresql_cannot_store_is_400_1200_naming_the_parameter(api, entries, query, where):
    error = assert_error(api.get(f"{URL}{query}"), 400, "1200")
    assert where in error["description"]


def test_offsets_up_to_15_59_are_read(api, entries):
    for query in ("?from=2024-05-01T00:00-15:59", "?to=2024-05-01T00:00%2B15:59:59",
                  f"?cursor={_cursor('2024-05-01T00:00-15:59')}"):  # fmt: skip
        assert api.get(f"{URL}{query}").status_code == 200, query


@pytest.mark.parametrize("raw", ["2026-06-01T00:00-16:00", "2026-06-01T00:00+23:59"])
def test_analytics_times_follow_the_same_offset_rule(raw):
    from analytics.metrics import ParamError, parse_time

    with pytest.raises(ParamError, match="'from'"):
        parse_time(raw, "from", UTC)
    assert parse_time("2026-06-01T00:00-15:59", "from", UTC).utcoffset() == -timedelta(hours=15, minutes=59)
