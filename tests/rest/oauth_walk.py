"""Walk the simulator's authorize page as a browser would (cookies, CSRF token, two forms), over plain HTTP."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from lxml import etree

from simulator.demo import DEMO_PASSWORD


def approve(url: str, *, company_id: str, user_id: str = "ws_connect", password: str = DEMO_PASSWORD,
            decision: str = "accept") -> dict[str, str]:
    """Sign in on the authorize page ``url`` and answer the consent page; the redirect's query parameters."""
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(url)
        assert page.status_code == 200 and "Sign in to Sage Intacct" in page.text, page.text[:300]
        form = {i.get("name"): i.get("value") or "" for i in etree.HTML(page.text).xpath("//form//input")}
        form.update(company_id=company_id, user_id=user_id, password=password)
        consent = browser.post(url.split("?")[0], data=form)
        assert "Allow" in consent.text, consent.text[:300]
        form = {i.get("name"): i.get("value") or "" for i in etree.HTML(consent.text).xpath("//form//input")}
        back = browser.post(url.split("?")[0], data={**form, "decision": decision})
    assert back.status_code == 302, back.text[:300]
    return {k: v[0] for k, v in parse_qs(urlsplit(back.headers["location"]).query).items()}
