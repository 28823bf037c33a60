"""A share's title through the real app: set by the API and the share form, shown (escaped) wherever the link
is shown, described by the OpenAPI document, and refused with a 422 when it is not one line of text."""

from __future__ import annotations

import html
import re
import uuid

import pytest

from satchel.domain.sharing import MAX_TITLE

from support.app import PASSWORD, Account, App

HTML = {"Accept": "text/html"}
TITLE = 'Q3 <script>alert("x")</script> & été'


def _path(url: str) -> str:
    return url.removeprefix("http://satchel.test")


def _element(page: str, opening: str, closing: str) -> str:
    """The text of the first element that opens with ``opening``, as a reader sees it (unescaped)."""
    match = re.search(f"{opening}(.*?){closing}", page, re.S)
    assert match, page[:2000]
    return html.unescape(match.group(1)).strip()


def _heading(page: str) -> str:
    return _element(page, r'<h1 id="public-heading"[^>]*>', "</h1>")


def _shows_escaped(page: str, title: str = TITLE) -> bool:
    """``title`` is on the page as text, and none of its markup is markup there."""
    return title in html.unescape(page) and "<script>alert" not in page


def _admin(app: App) -> Account:
    email = f"admin-{uuid.uuid4().hex[:10]}@example.test"
    user = app.call(lambda: app.services.accounts.create_user(email, PASSWORD, is_admin=True))
    return Account(email=email, token=app.call(app.services.accounts.create_token, user, "tests").secret, id=user.id)


def test_the_api_keeps_a_trimmed_title_and_returns_it_in_every_share_object(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "deck.pdf", b"%PDF deck", share="false")["file"]["id"]
    created = app.share(alice, [file_id], title=f"  {TITLE}  ")
    assert created["title"] == TITLE
    assert app.client.get(f"/api/shares/{created['id']}", headers=alice.auth).json()["title"] == TITLE
    listed = app.client.get("/api/shares", headers=alice.auth).json()["items"]
    assert [s["title"] for s in listed] == [TITLE]
    file_shares = app.client.get(f"/api/files/{file_id}", headers=alice.auth).json()["shares"]
    assert [s["title"] for s in file_shares] == [TITLE]
    for blank in (None, "", "   "):
        assert app.share(alice, [file_id], title=blank)["title"] is None
    assert app.share(alice, [file_id])["title"] is None, "a title is optional"


@pytest.mark.parametrize(
    "title",
    ["two\nlines", "tab\there", "nul\x00", "bell\x07", "next\x85line", "rtl\u202eoverride", "x" * (MAX_TITLE + 1)],
)
def test_a_title_that_is_not_one_line_of_text_is_a_422_problem_and_makes_no_link(app: App, title: str) -> None:
    alice = app.account()
    file_id = app.upload(alice, "deck.pdf", b"%PDF deck", share="false")["file"]["id"]
    refused = app.client.post("/api/shares", json={"file_ids": [file_id], "title": title}, headers=alice.auth)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "title" in refused.text.lower()
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0


def test_the_openapi_document_describes_the_title_as_the_rule_keeps_it(app: App) -> None:
    document = app.client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    [asked] = [s for s in schemas["ShareIn"]["properties"]["title"]["anyOf"] if s.get("type") == "string"]
    assert asked["maxLength"] == MAX_TITLE
    pattern = re.compile(asked["pattern"])
    for accepted in ("", "Q3 report", TITLE, "family \U0001f468\u200d\U0001f469\u200d\U0001f467"):
        assert pattern.search(accepted), accepted
    for refused in ("two\nlines", "tab\there", "nul\x00", "next\x85line", "a\u2028b", "rtl\u202eoverride"):
        assert not pattern.search(refused), repr(refused)
    assert "title" in schemas["ShareOut"]["required"]
    assert "title" in schemas["ShareOut"]["properties"] and "title" in schemas["AdminShareOut"]["properties"]


def test_the_share_form_sets_the_title_shown_as_the_public_pages_heading_above_the_files(app: App) -> None:
    alice = app.account()
    ids = [
        app.upload(alice, name, b"bytes of " + name.encode(), share="false")["file"]["id"]
        for name in ("a.txt", "b.txt")
    ]
    app.sign_in(alice)
    form = {"file_id": ids, "title": TITLE, "csrf_token": app.csrf("/files")}
    created = app.client.post("/shares", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    owner_page = app.client.get(created.headers["location"], headers=HTML).text
    assert _shows_escaped(owner_page) and TITLE in _element(owner_page, "<h1[^>]*>", '<span class="badge')
    [share] = app.client.get("/api/shares", headers=alice.auth).json()["items"]
    assert share["title"] == TITLE

    public = app.client.get(_path(share["url"]), headers=HTML).text
    assert _heading(public) == TITLE and _shows_escaped(public), "the title is the heading, escaped"
    assert _element(public, "<title>", "</title>").startswith(TITLE)
    assert public.index("public-heading") < public.index("a.txt") < public.index("b.txt"), "the files stay below it"
    assert "2 files" in public

    untitled = app.share(alice, [ids[0]])
    assert _heading(app.client.get(_path(untitled["url"]), headers=HTML).text) == "1 file shared with you"


def test_the_owners_lists_and_the_admin_console_show_the_title(app: App) -> None:
    admin, alice = _admin(app), app.account()
    file_id = app.upload(alice, "deck.pdf", b"%PDF deck", share="false")["file"]["id"]
    share = app.share(alice, [file_id], title=TITLE)

    app.sign_in(alice)
    for page in ("/shares", f"/files/{file_id}"):
        assert _shows_escaped(app.client.get(page, headers=HTML).text), page

    every = app.client.get("/api/admin/shares", headers=admin.auth).json()["items"]
    assert [entry["title"] for entry in every if entry["id"] == share["id"]] == [TITLE]
    app.sign_in(admin)
    console = app.client.get("/admin/shares", headers=HTML).text
    assert _shows_escaped(console) and "deck.pdf" in console


def test_a_refused_title_on_the_share_form_is_a_readable_422_page_that_keeps_what_was_typed(app: App) -> None:
    alice = app.account()
    file_id = app.upload(alice, "deck.pdf", b"%PDF deck", share="false")["file"]["id"]
    app.sign_in(alice)
    form = {"file_id": file_id, "title": "Q3\treport", "note": "for Friday", "csrf_token": app.csrf("/files")}
    page = app.client.post("/shares", data=form, headers=HTML)
    assert page.status_code == 422
    assert "A title is one line of text" in page.text
    assert 'value="Q3\treport"' in page.text and "for Friday" in page.text
    assert app.client.get("/api/shares", headers=alice.auth).json()["total"] == 0
