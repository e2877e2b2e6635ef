"""The web console through FastAPI's test client: sign-in, CSRF, tenants, the plan pages and
the rules page. (The ledger page: test_console_ledger.py; assets, security headers and hostile
requests: test_console_hardening.py; the same flows in a real browser:
test_console_browser.py.)"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from straits.server import create_app
from straits.store import Store
from straits.store.audit import refusals
from straits.store.keys import Keys
from straits.store.note import Signer
from straits.store.receipts import verify_receipt
from straits.store.tokens import create_token
from test_report import EXTERNAL, figures_of, markup

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SIGNER = Signer.generate("straits.test/console")


class Browser:
    """One signed-in user's cookie jar over the app."""

    def __init__(self, app: object, store: Store) -> None:
        self.client = TestClient(app, base_url="https://testserver")  # type: ignore[arg-type]
        self.store = store

    def sign_in(self, token: str) -> str:
        self.token = token
        page = self.client.get("/ui/login")
        csrf = CSRF.search(page.text)
        assert csrf is not None
        r = self.client.post(
            "/ui/login", data={"token": token, "csrf": csrf.group(1)}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
        return self.csrf()

    def csrf(self) -> str:
        m = CSRF.search(self.client.get("/ui/").text)
        assert m is not None
        return m.group(1)

    def submit(self, text: str, **form: str) -> str:
        r = self.client.post(
            "/ui/submit",
            data={"csrf": self.csrf(), "text": text, "time_limit": "2", "record": "1", **form},
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        return str(r.headers["location"]).rsplit("/", 1)[1]

    def wait(self, plan_id: str, seconds: float = 120) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            r = self.client.get(f"/ui/plans/{plan_id}/progress")
            if r.status_code == 205:
                return
            assert r.status_code == 200
            time.sleep(0.2)
        raise AssertionError(f"plan {plan_id} did not finish")


def running_console(tmp_path: Path) -> Iterator[tuple[object, Store]]:
    """The console's app and store over a new database in ``tmp_path``: the ``console``
    fixture's, for other modules' fixtures to yield from."""
    store = Store(f"sqlite:///{tmp_path / 'console.db'}")
    app = create_app(store)
    app.state.ledger_keys = Keys(SIGNER)  # the server signs checkpoints, so receipts exist
    with TestClient(app):  # runs the lifespan (the plan runner) for the test's duration
        yield app, store


def test_anonymous_users_are_sent_to_sign_in(console: tuple[object, Store]) -> None:
    app, store = console
    c = Browser(app, store).client
    for path in ("/ui/", "/ui/submit", "/ui/ledger", "/ui/rules", "/ui/plans/abc"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/ui/login", path
    assert c.post("/ui/logout", data={"csrf": "x"}, follow_redirects=False).status_code == 303


def test_sign_in_sets_a_strict_cookie_and_refusals_are_logged(
    console: tuple[object, Store],
) -> None:
    app, store = console
    b = Browser(app, store)
    page = b.client.get("/ui/login")
    csrf = CSRF.search(page.text)
    assert csrf is not None
    bad = b.client.post("/ui/login", data={"token": "st_nope_nope", "csrf": csrf.group(1)})
    assert bad.status_code == 401 and 'aria-invalid="true"' in bad.text
    assert any(r.path == "/ui/login" and r.status == 401 for r in refusals(store))
    forged = b.client.post("/ui/login", data={"token": "x", "csrf": "forged"})
    assert forged.status_code == 403
    token = create_token(store, "hz-cloud", "planner")[0]
    r = b.client.post(
        "/ui/login", data={"token": token, "csrf": csrf.group(1)}, follow_redirects=False
    )
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    home = b.client.get("/ui/")
    assert home.status_code == 200 and "hz-cloud" in home.text
    csp = home.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no eval


def test_forms_without_the_session_csrf_token_are_refused(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    r = b.client.post("/ui/submit", data={"csrf": "forged", "text": demo_text})
    assert r.status_code == 403
    assert b.client.post("/ui/logout", data={"csrf": ""}).status_code == 403
    assert b.client.get("/ui/").status_code == 200  # still signed in


def test_submit_watch_and_read_a_plan(console: tuple[object, Store], demo_text: str) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    assert plan_id in b.client.get("/ui/").text
    b.wait(plan_id)
    page = b.client.get(f"/ui/plans/{plan_id}")
    assert page.status_code == 200
    for sec in (
        "summary",
        "schedule",
        "map-section",
        "costs",
        "why-not",
        "rules-section",
        "ledger",
    ):
        assert f'id="{sec}"' in page.text
    assert not EXTERNAL.search(markup(page.text))
    assert {"map", "rules", "pool-0"} <= set(figures_of(page.text))
    report = b.client.get(f"/ui/plans/{plan_id}/report.html")
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert not EXTERNAL.search(markup(report.text)) and "window.PlotlyGeoAssets" in report.text
    seq = re.search(r"/ui/ledger/(\d+)/receipt.json", page.text)
    assert seq is not None
    receipt = b.client.get(f"/ui/ledger/{seq.group(1)}/receipt.json")
    assert receipt.status_code == 200 and "attachment" in receipt.headers["content-disposition"]
    verify_receipt(json.loads(receipt.text), [SIGNER.verifier])  # offline, the key alone
    # the same report through the API, with a bearer token; another tenant's token gets 404
    api = b.client.get(
        f"/v1/plans/{plan_id}/report", headers={"Authorization": f"Bearer {b.token}"}
    )
    assert api.status_code == 200 and api.headers["content-type"].startswith("text/html")
    by_prefix = b.client.get(
        f"/v1/plans/{plan_id[:8]}/report",  # as /v1/plans/{id} takes it
        headers={"Authorization": f"Bearer {b.token}"},
    )
    assert by_prefix.status_code == 200 and plan_id in by_prefix.text
    other = create_token(store, "other-co", "planner")[0]
    for ref in (plan_id, plan_id[:8]):
        assert (
            b.client.get(
                f"/v1/plans/{ref}/report", headers={"Authorization": f"Bearer {other}"}
            ).status_code
            == 404
        )
    ledger = b.client.get("/ui/ledger")
    assert 'data-verified="true"' in ledger.text and f'data-seq="{seq.group(1)}"' in ledger.text


def test_regimes_and_what_if_name_the_rule_that_moves_the_plan(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)
    compare = b.client.get(f"/ui/plans/{plan_id}/compare")
    assert compare.status_code == 200
    moved = re.findall(r'<tr class="moved" data-stage="([^"]+)"', compare.text)
    assert "chat-72b/pretrain" in moved
    assert 'data-rule="us-diffusion-tier3-hq-compute"' in compare.text
    # the same placements asked of the Diffusion rule: the offshore pretraining is blocked
    whatif = b.client.get(
        f"/ui/plans/{plan_id}/whatif", params={"date": "2025-06-01", "regime": "ai-diffusion"}
    )
    assert whatif.status_code == 200 and 'data-severity="blocking"' in whatif.text
    calm = b.client.get(f"/ui/plans/{plan_id}/whatif", params={"date": "2025-06-01"})
    assert 'data-severity="blocking"' not in calm.text


def test_what_if_and_regimes_decide_under_the_servers_rules(
    console: tuple[object, Store], demo_text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages decide under the rules the server read at start, as the API does: each worker
    thread read the pack files again, so a pack edited on disk while the server ran made the
    console contradict /v1/check, one thread another (atk70). Reading packs now fails: the
    pages still answer, from the server's own set."""
    import straits.rules.pack_loader

    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("rule packs read again")

    monkeypatch.setattr(straits.rules.pack_loader, "load_pack", no_reading)
    whatif = b.client.get(
        f"/ui/plans/{plan_id}/whatif", params={"date": "2025-06-01", "regime": "ai-diffusion"}
    )
    assert whatif.status_code == 200 and 'data-severity="blocking"' in whatif.text
    assert b.client.get(f"/ui/plans/{plan_id}/compare").status_code == 200


def test_a_tenant_never_sees_another_tenants_plan(
    console: tuple[object, Store], demo_text: str
) -> None:
    app, store = console
    owner = Browser(app, store)
    owner.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = owner.submit(demo_text)
    owner.wait(plan_id)
    other = Browser(app, store)
    other.sign_in(create_token(store, "other-co", "admin" if False else "planner")[0])
    assert plan_id not in other.client.get("/ui/").text
    for path in (
        f"/ui/plans/{plan_id}",
        f"/ui/plans/{plan_id}/report.html",
        f"/ui/plans/{plan_id}/compare",
        f"/ui/plans/{plan_id}/whatif",
        f"/ui/plans/{plan_id}/progress",
        "/ui/ledger/1/receipt.json",
    ):
        r = other.client.get(path)
        assert r.status_code == 404, path
    assert "data-seq=" not in other.client.get("/ui/ledger").text  # it recorded nothing
    # an admin sees every tenant's
    admin = Browser(app, store)
    admin.sign_in(create_token(store, "ops", "admin")[0])
    assert plan_id in admin.client.get("/ui/").text
    assert admin.client.get(f"/ui/plans/{plan_id}").status_code == 200


def test_a_bad_scenario_shows_its_field_path(console: tuple[object, Store], demo_text: str) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    bad = demo_text.replace("date: 2025-06-01", "date: not-a-date", 1)
    r = b.client.post("/ui/submit", data={"csrf": b.csrf(), "text": bad})
    assert r.status_code == 400
    assert 'data-path="date"' in r.text and "not-a-date" in r.text  # kept for editing
    # every problem at once, each with its field path and line (not the first and a count)
    two = bad.replace("straits: 1", "straits: 1\nbogus_field: 3", 1)
    r = b.client.post("/ui/submit", data={"csrf": b.csrf(), "text": two})
    assert r.status_code == 400 and "more problem" not in r.text
    assert 'data-path="date"' in r.text and 'data-path="bogus_field"' in r.text
    lines = {p: n for p, n in re.findall(r'class="where" data-path="([^"]*)">line (\d+)', r.text)}
    text_lines = two.splitlines()
    for path, prefix in (("date", "date:"), ("bogus_field", "bogus_field:")):
        assert text_lines[int(lines[path]) - 1].startswith(prefix), (path, lines)
    r = b.client.post("/ui/submit", data={"csrf": b.csrf(), "text": "{ unclosed: ["})
    assert r.status_code == 400 and 'id="submit-errors"' in r.text
    for seconds in ("1e308", "1_0", " 5 ", "nan"):  # `1_0` and ` 5 ` were read as 10 and 5
        r = b.client.post(
            "/ui/submit", data={"csrf": b.csrf(), "text": demo_text, "time_limit": seconds}
        )
        assert r.status_code == 400 and 'data-path="time_limit"' in r.text, seconds
    # a viewer may look but not submit
    viewer = Browser(app, store)
    viewer.sign_in(create_token(store, "hz-cloud", "viewer")[0])
    assert (
        viewer.client.post(
            "/ui/submit", data={"csrf": viewer.csrf(), "text": demo_text}
        ).status_code
        == 403
    )


def test_a_pasted_scenario_up_to_the_cap_is_taken(
    console: tuple[object, Store], demo_text: str
) -> None:
    """The submit page takes a scenario of up to 2 MiB. A browser sends its form as multipart
    (it has a file field), whose text fields Starlette capped at 1 MiB: a scenario of 1 to 2 MiB
    pasted into the page was refused ("Part exceeded maximum size of 1024KB"), the text lost
    (found by the hostile pass atk23). A field given twice, or a file where text belongs, is a
    400."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    big = demo_text + "\n" + ("# " + "x" * 97 + "\n") * 15_000  # 1.5 MB of comments
    no_file = {"file": ("", b"", "application/octet-stream")}  # as a browser sends it
    form = {"csrf": b.csrf(), "text": big, "time_limit": "2", "record": "0"}
    r = b.client.post("/ui/submit", data=form, files=no_file, follow_redirects=False)
    assert r.status_code == 303, r.text[-500:]
    twice = {**form, "text": demo_text, "regime": ["enacted", "ai-diffusion"]}
    r = b.client.post("/ui/submit", data=twice, files=no_file)
    assert r.status_code == 400 and "regime was given 2 times" in r.text
    as_file = {"text": ("s.yaml", demo_text.encode(), "application/yaml")}
    r = b.client.post("/ui/submit", data={"csrf": b.csrf()}, files=as_file)
    assert r.status_code == 400 and "text is a file" in r.text
    assert r.headers["content-type"].startswith("text/html")


def test_rules_page_lists_citations(console: tuple[object, Store]) -> None:
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "viewer")[0])
    r = b.client.get("/ui/rules", params={"date": "2025-04-10"})
    assert r.status_code == 200 and 'data-rule="us-ear-2025-h20"' in r.text
    before = b.client.get("/ui/rules", params={"date": "2025-04-08"})
    assert 'data-rule="us-ear-2025-h20"' not in before.text
    assert b.client.get("/ui/rules", params={"date": "9999-99-99"}).status_code in (400, 422)


def test_every_link_of_the_console_answers_the_signed_in_user(
    console: tuple[object, Store], demo_text: str
) -> None:
    """Each link a console page holds leads somewhere for the user who sees it. The plan
    page's "JSON" button linked to /v1/plans/ID/plan, which takes a bearer token and no
    cookie: 401 for every signed-in user (found by a hostile pass, atk10). The plan document
    is now the console's own (/ui/plans/ID/plan.json), another tenant's is 404."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    plan_id = b.submit(demo_text)
    b.wait(plan_id)
    seen: set[str] = set()
    for page in ("/ui/", f"/ui/plans/{plan_id}", "/ui/ledger", "/ui/rules", "/ui/submit"):
        html = b.client.get(page).text
        for link in re.findall(r'href="(/[^"#]*)"', html):
            link = link.replace("&amp;", "&")
            if link in seen:
                continue
            seen.add(link)
            r = b.client.get(link)
            assert r.status_code == 200, (page, link, r.status_code)
    assert f"/ui/plans/{plan_id}/plan.json" in seen
    doc = b.client.get(f"/ui/plans/{plan_id}/plan.json")
    assert doc.headers["content-type"].startswith("application/json")
    assert doc.json()["id"] == plan_id and doc.json()["inputs"]["scenario"]
    other = Browser(app, store)
    other.sign_in(create_token(store, "other-co", "planner")[0])
    assert other.client.get(f"/ui/plans/{plan_id}/plan.json").status_code == 404


def test_a_cancelled_plan_has_a_page(console: tuple[object, Store], demo_text: str) -> None:
    """A plan cancelled while it ran (DELETE /v1/plans/ID) is listed with a link to its page;
    the page was a 500 (the template drew a finished plan's view it did not have; found by a
    hostile pass, atk10). It says the plan was cancelled; its report is refused with a 4xx."""
    app, store = console
    b = Browser(app, store)
    b.client = TestClient(
        app,  # type: ignore[arg-type]
        base_url="https://testserver",
        raise_server_exceptions=False,
    )
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    r = b.client.post(
        "/ui/submit",
        data={"csrf": b.csrf(), "text": demo_text, "time_limit": "30", "record": "0"},
        follow_redirects=False,
    )
    plan_id = str(r.headers["location"]).rsplit("/", 1)[1]
    cancel = b.client.delete(f"/v1/plans/{plan_id}", headers={"Authorization": f"Bearer {b.token}"})
    assert cancel.status_code in (200, 202), cancel.text  # 202: it stops at its next step
    b.wait(plan_id)
    assert f'href="/ui/plans/{plan_id}"' in b.client.get("/ui/").text
    page = b.client.get(f"/ui/plans/{plan_id}")
    assert page.status_code == 200 and 'data-status="cancelled"' in page.text
    for suffix in ("/report.html", "/plan.json", "/compare", "/whatif"):
        assert 400 <= b.client.get(f"/ui/plans/{plan_id}{suffix}").status_code < 500, suffix


def test_a_plan_not_recorded_can_be_looked_at(
    console: tuple[object, Store], demo_text: str
) -> None:
    """The submit form offers "record in the ledger"; a plan planned without it was refused by
    its own page, report, comparison and what-if (400: "nothing proves it", the rule for
    export and admission, which use a plan; found by a hostile pass, atk10). The console shows
    it as stored, as the API's plan document does, with no ledger entry or receipt."""
    app, store = console
    b = Browser(app, store)
    b.sign_in(create_token(store, "hz-cloud", "planner")[0])
    r = b.client.post(
        "/ui/submit",
        data={"csrf": b.csrf(), "text": demo_text, "time_limit": "2", "record": "0"},
        follow_redirects=False,
    )
    plan_id = str(r.headers["location"]).rsplit("/", 1)[1]
    b.wait(plan_id)
    page = b.client.get(f"/ui/plans/{plan_id}")
    assert page.status_code == 200 and 'id="why-not"' in page.text
    assert "receipt.json" not in page.text
    for suffix in ("/report.html", "/compare", "/whatif", "/plan.json"):
        assert b.client.get(f"/ui/plans/{plan_id}{suffix}").status_code == 200, suffix
    other = Browser(app, store)
    other.sign_in(create_token(store, "other-co", "planner")[0])
    for suffix in ("", "/report.html", "/compare", "/whatif", "/plan.json"):
        assert other.client.get(f"/ui/plans/{plan_id}{suffix}").status_code == 404, suffix
