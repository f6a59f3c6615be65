"""`rewix-sync web`: the operator page served by gunicorn, over HTTP and in headless Chromium."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
import requests

from shared.db import session_scope
from shared.messaging import topology
from tests.conftest import drain, queue_depth
from tests.integration.test_admin_dlq import dead_letter, order_line
from tests.integration.test_admin_views import WC_URL, add_order, cli_env
from tests.integration.web_process import ROOT, TOKEN, Pages, WebServer, bearer, headless_page, start

EVIL = '<script>alert("x")</script>'


@pytest.fixture
def server(db: str, broker: str, pages: Pages) -> WebServer:
    return pages.get(db, broker, ADMIN_TOKEN=TOKEN)


def seed_page(db: str, broker: str) -> str:
    """An order with hostile text in it, a dead letter; returns the dead letter's message id."""
    with session_scope(db) as s:
        add_order(s, 3001, "pending", [(1, 100001, 2)], last_error=EVIL)
    message = order_line(3001)
    dead_letter(broker, message.to_bytes(), message.message_id, reason=f"HTTP 400: {EVIL}")
    return message.message_id


def page_with_dead_letter(server: WebServer, timeout: float = 15.0) -> requests.Response:
    """The page once the web process's background drain has moved the seeded dead letter into it."""
    deadline = time.monotonic() + timeout
    while True:
        answer = requests.get(server.url + "/", headers=bearer(), timeout=10)
        assert answer.status_code == 200
        if 'action="/dead-letters/' in answer.text or time.monotonic() > deadline:
            return answer
        time.sleep(0.1)


def test_refuses_everyone_without_the_token(server: WebServer) -> None:
    for headers in ({}, bearer("wrong"), bearer(TOKEN[:-1]), {"Authorization": f"Basic {TOKEN}"},
                    {"Cookie": "rewix_admin=forged"}, {"Cookie": f"rewix_admin={TOKEN}"}):
        answer = requests.get(server.url + "/", headers=headers, timeout=10, allow_redirects=False)
        assert answer.status_code == 401, headers
        assert 'name="token"' in answer.text  # the login form, for a person with a browser
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


def test_refuses_everyone_while_admin_token_is_unset(db: str, broker: str) -> None:
    web = start(db, broker, ADMIN_TOKEN="")
    try:
        for headers in ({}, bearer(""), bearer("anything")):
            answer = requests.get(web.url + "/", headers=headers, timeout=10)
            assert answer.status_code == 401 and "ADMIN_TOKEN is not set" in answer.text
        login = requests.post(web.url + "/login", data={"token": ""}, timeout=10, allow_redirects=False)
        assert login.status_code == 401
    finally:
        web.stop()


def test_page_shows_the_tables_and_escapes_everything(db: str, broker: str, server: WebServer) -> None:
    seed_page(db, broker)
    answer = page_with_dead_letter(server)  # drained in the background, shown within its interval
    page = answer.text
    assert "Reservations" in page and "Orders" in page and "Dead letters" in page
    assert 'action="/dead-letters/' in page and "HTTP 400: &lt;script&gt;" in page
    assert EVIL not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert f'href="{WC_URL}/wp-admin/post.php?post=3001&amp;action=edit"' in page
    assert queue_depth(broker, topology.ORDER_LINES.dead) == 0  # the drain took it off its queue
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert answer.headers["X-Frame-Options"] == "DENY"


def test_login_sets_an_httponly_cookie(server: WebServer) -> None:
    wrong = requests.post(server.url + "/login", data={"token": "nope"}, timeout=10, allow_redirects=False)
    assert wrong.status_code == 401 and "not the admin token" in wrong.text
    session = requests.Session()
    login = session.post(server.url + "/login", data={"token": TOKEN}, timeout=10, allow_redirects=False)
    assert login.status_code == 303 and login.headers["Location"] == "/"
    cookie = login.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    assert session.get(server.url + "/", timeout=10).status_code == 200
    session.post(server.url + "/logout", timeout=10, allow_redirects=False)
    session.cookies.clear()
    assert session.get(server.url + "/", timeout=10).status_code == 401


def logged_in(server: WebServer) -> requests.Session:
    session = requests.Session()
    login = session.post(server.url + "/login", data={"token": TOKEN}, timeout=10, allow_redirects=False)
    assert login.status_code == 303
    return session


def csrf_of(session: requests.Session, server: WebServer) -> str:
    (csrf,) = re.findall(r'name="csrf" value="([0-9a-f]+)"', session.get(server.url + "/", timeout=10).text)
    return csrf


def test_replay_needs_the_csrf_token_of_the_session(db: str, broker: str, server: WebServer) -> None:
    message_id = seed_page(db, broker)
    page_with_dead_letter(server)
    person = logged_in(server)
    page = person.get(server.url + "/", timeout=10).text
    (record_id,) = re.findall(r'action="/dead-letters/(\d+)/replay"', page)
    url = f"{server.url}/dead-letters/{record_id}/replay"
    mine = csrf_of(person, server)

    # Another session's token, the one this session had before it logged out and in again, none, a guess:
    # all refused. The token is the session's own, not one for everyone who holds ADMIN_TOKEN.
    other = csrf_of(logged_in(server), server)
    person.post(server.url + "/logout", timeout=10, allow_redirects=False)
    person = logged_in(server)
    current = csrf_of(person, server)
    assert len({mine, other, current}) == 3
    assert requests.post(url, data={"csrf": current}, timeout=10, allow_redirects=False).status_code == 401
    for csrf in ({}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": TOKEN}, {"csrf": other}, {"csrf": mine}):
        answer = person.post(url, data=csrf, timeout=10, allow_redirects=False)
        assert answer.status_code == 403, csrf
    assert queue_depth(broker, topology.ORDER_LINES.name) == 0
    assert person.get(url, timeout=10).status_code == 405

    answer = person.post(url, data={"csrf": current}, timeout=10, allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/?replayed={record_id}#dead-letters"
    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert properties.message_id == message_id and json.loads(body)["order_id"] == 3001

    missing = person.post(f"{server.url}/dead-letters/999999/replay", data={"csrf": current}, timeout=10,
                          allow_redirects=False)
    assert missing.status_code == 404


def test_a_script_with_the_bearer_token_replays_without_a_form_token(db: str, broker: str,
                                                                      server: WebServer) -> None:
    # No browser sends an Authorization header by itself, so no other site can make one send it.
    message_id = seed_page(db, broker)
    page = page_with_dead_letter(server).text
    (record_id,) = re.findall(r'action="/dead-letters/(\d+)/replay"', page)
    answer = requests.post(f"{server.url}/dead-letters/{record_id}/replay", headers=bearer(), timeout=10,
                           allow_redirects=False)
    assert answer.status_code == 303
    ((properties, _body),) = drain(broker, topology.ORDER_LINES.name)
    assert properties.message_id == message_id


def test_page_still_shows_the_store_while_rabbitmq_is_down(db: str, broker: str) -> None:
    with session_scope(db) as s:
        add_order(s, 3002, "pending", [(1, 100002, 1)])
    web = start(db, broker, ADMIN_TOKEN=TOKEN, AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F")
    try:
        answer = requests.get(web.url + "/", headers=bearer(), timeout=15)
        assert answer.status_code == 200
        assert "RabbitMQ unavailable" in answer.text and "#3002" in answer.text
    finally:
        web.stop()


def test_web_fails_with_one_line_when_the_database_is_down(broker: str) -> None:
    env = {**os.environ, **cli_env("postgresql://postgres@127.0.0.1:1/x", broker, ADMIN_PORT="0", ADMIN_TOKEN=TOKEN)}
    done = subprocess.run([sys.executable, "-c", "from services.admin.cli import main; main()", "web"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith("Error: database unavailable") and done.stderr.count("\n") == 1


@pytest.mark.browser
def test_a_person_logs_in_reads_the_tables_and_replays_a_dead_letter(db: str, broker: str, server: WebServer) -> None:
    message_id = seed_page(db, broker)
    page_with_dead_letter(server)
    with headless_page() as page:
        first = page.goto(server.url + "/")
        assert first.status == 401
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.wait_for_selector("#reservations table")

        reservation = page.inner_text("#reservations tbody tr")
        assert "100001" in reservation and "#3001" in reservation
        assert page.get_attribute("#reservations tbody a", "href") == f"{WC_URL}/wp-admin/post.php?post=3001&action=edit"
        assert EVIL in page.inner_text("#orders tbody")  # shown as text, never run
        row = page.locator("#dead-letters tbody tr").first
        assert "rewix.order_lines" in row.inner_text() and EVIL in row.inner_text()

        # Dismissing the confirmation sends nothing.
        page.once("dialog", lambda dialog: dialog.dismiss())
        row.locator("button").click()
        page.wait_for_timeout(300)
        assert queue_depth(broker, topology.ORDER_LINES.name) == 0

        questions: list[str] = []

        def accept(dialog) -> None:
            questions.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        row.locator("button").click()
        page.wait_for_selector(".notice")
        assert "was put back on its queue" in page.inner_text(".notice")
        assert questions and questions[0].startswith("Replay dead letter #")
        assert page.locator("#dead-letters tbody tr").first.locator("button").inner_text() == "Replay again"

    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert properties.message_id == message_id and json.loads(body)["order_id"] == 3001
