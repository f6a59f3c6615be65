"""The operator page's sessions over real HTTP: expiry, revocation, throttled logins, Secure over TLS,
and which dead letters the page shows."""
from __future__ import annotations

import re

import requests

from services.admin.web import COOKIE
from services.admin.web_sessions import THROTTLE_FAILURES
from tests.integration.test_admin_dlq import dead_letter, order_line
from tests.integration.web_process import TOKEN, Pages, bearer
from tests.support import wait_until


def login(url: str, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(url + "/login", data={"token": TOKEN}, headers=headers or {}, timeout=10,
                         allow_redirects=False)


def cookie_of(answer: requests.Response) -> str:
    match = re.match(rf"{COOKIE}=([^;]+)", answer.headers["Set-Cookie"])
    assert match, answer.headers["Set-Cookie"]
    return match.group(1)


def with_cookie(url: str, value: str) -> int:
    return requests.get(url + "/", headers={"Cookie": f"{COOKIE}={value}"}, timeout=10,
                        allow_redirects=False).status_code


def test_a_session_expires_after_admin_session_hours(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN, ADMIN_SESSION_HOURS=str(3 / 3600))  # three seconds
    answer = login(web.url)
    assert answer.status_code == 303 and "Max-Age=3" in answer.headers["Set-Cookie"]
    session = cookie_of(answer)
    assert with_cookie(web.url, session) == 200
    wait_until(lambda: with_cookie(web.url, session) == 401, timeout=10, what="the session to expire")


def test_logout_revokes_the_session_in_every_process(db: str, broker: str, pages: Pages) -> None:
    # Two servers on one database stand for several gunicorn workers or replicas.
    first, second = pages.get(db, broker, ADMIN_TOKEN=TOKEN), pages.get(db, broker, ADMIN_TOKEN=TOKEN, replica=1)
    answer = login(first.url)
    session = cookie_of(answer)
    assert TOKEN not in answer.headers["Set-Cookie"]
    assert with_cookie(first.url, session) == 200 and with_cookie(second.url, session) == 200
    other = cookie_of(login(first.url))  # another browser, logged in too

    out = requests.post(second.url + "/logout", headers={"Cookie": f"{COOKIE}={session}"}, timeout=10,
                        allow_redirects=False)
    assert out.status_code == 303 and out.headers["Location"] == "/login"
    assert "Max-Age=0" in out.headers["Set-Cookie"]
    # The old cookie, sent again by hand, opens nothing anywhere; the other session still works.
    assert with_cookie(first.url, session) == 401 and with_cookie(second.url, session) == 401
    assert with_cookie(first.url, other) == 200


def test_a_new_admin_token_ends_the_sessions_of_the_old_one(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN)
    session = cookie_of(login(web.url))
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN + "-rotated")
    assert with_cookie(web.url, session) == 401


def test_logins_are_throttled_per_client_address(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN, ADMIN_TRUSTED_PROXIES="127.0.0.1")
    client = {"X-Forwarded-For": "203.0.113.7"}
    for _ in range(THROTTLE_FAILURES):
        wrong = requests.post(web.url + "/login", data={"token": "guess"}, headers=client, timeout=10)
        assert wrong.status_code == 401
    # Now even the right token is refused for a while, with when to come back.
    throttled = login(web.url, client)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) in range(1, 61)
    assert "Set-Cookie" not in throttled.headers
    # Another client (another address behind the same proxy) is not held up.
    assert login(web.url, {"X-Forwarded-For": "198.51.100.9"}).status_code == 303
    # A bearer token is not a login: scripts keep working.
    assert requests.get(web.url + "/", headers=bearer(), timeout=10).status_code == 200


def test_bearer_token_guesses_are_throttled_like_logins(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN, ADMIN_TRUSTED_PROXIES="127.0.0.1")
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    for n in range(THROTTLE_FAILURES):
        wrong = requests.get(web.url + "/", headers={**guesser, **bearer(f"guess{n}")}, timeout=10)
        assert wrong.status_code == 401
    # Now even the right token is refused from that address for a while, through either door.
    throttled = requests.get(web.url + "/", headers={**guesser, **bearer()}, timeout=10)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) in range(1, 61)
    assert TOKEN not in throttled.text
    assert login(web.url, guesser).status_code == 429
    # Another client is not held up.
    assert requests.get(web.url + "/", headers={"X-Forwarded-For": "198.51.100.9", **bearer()},
                        timeout=10).status_code == 200


def test_a_client_cannot_dodge_the_throttle_with_a_forwarded_header(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN)  # no trusted proxy: X-Forwarded-For is the client's own word
    for n in range(THROTTLE_FAILURES):
        requests.post(web.url + "/login", data={"token": "guess"}, headers={"X-Forwarded-For": f"10.0.0.{n}"},
                      timeout=10)
    assert login(web.url, {"X-Forwarded-For": "10.0.0.99"}).status_code == 429


def test_the_cookie_is_secure_whenever_the_page_is_served_over_tls(db: str, broker: str, pages: Pages) -> None:
    behind_proxy = pages.get(db, broker, ADMIN_TOKEN=TOKEN, ADMIN_TRUSTED_PROXIES="127.0.0.1,::1")
    over_tls = login(behind_proxy.url, {"X-Forwarded-Proto": "https"})
    assert over_tls.status_code == 303 and "Secure" in over_tls.headers["Set-Cookie"]
    plain = login(behind_proxy.url)
    assert plain.status_code == 303 and "Secure" not in plain.headers["Set-Cookie"]
    untrusted = pages.get(db, broker, ADMIN_TOKEN=TOKEN)
    # From a client that is not a trusted proxy the header proves nothing.
    answer = login(untrusted.url, {"X-Forwarded-Proto": "https"})
    assert answer.status_code == 303 and "Secure" not in answer.headers["Set-Cookie"]


def test_the_page_shows_the_waiting_dead_letters_and_all_of_them_on_request(db: str, broker: str, pages: Pages) -> None:
    web = pages.get(db, broker, ADMIN_TOKEN=TOKEN)
    for order_id in (4901, 4902):
        message = order_line(order_id)
        dead_letter(broker, message.to_bytes(), message.message_id)

    def page_text() -> str:
        return requests.get(web.url + "/", headers=bearer(), timeout=10).text

    # The web process drains the dead-letter queues in the background: both show within its interval.
    wait_until(lambda: len(re.findall(r'action="/dead-letters/(\d+)/replay"', page_text())) == 2, timeout=15,
               what="both dead letters on the page")
    page = page_text()
    ids = dict(zip((4901, 4902), re.findall(r'action="/dead-letters/(\d+)/replay"', page)))
    assert len(ids) == 2
    # A script with the bearer token needs no form token (the page's form carries none for it).
    assert 'name="csrf" value=""' in page
    replayed = requests.post(f"{web.url}/dead-letters/{ids[4901]}/replay", headers=bearer(), timeout=10,
                             allow_redirects=False)
    assert replayed.status_code == 303

    def rows(path: str) -> list[str]:
        text = requests.get(web.url + path, headers=bearer(), timeout=10).text
        section = text.split('id="dead-letters"')[1]
        return re.findall(r'<tr data-id="(\d+)"', section)

    assert rows("/") == [ids[4902]]  # what still waits
    assert sorted(rows("/?dead_letters=all")) == sorted(ids.values())
    assert rows(f"/?replayed={ids[4901]}") == sorted(ids.values())  # the one just replayed stays in view
    page = requests.get(web.url + "/", headers=bearer(), timeout=10).text
    assert 'href="/?dead_letters=all#dead-letters"' in page
