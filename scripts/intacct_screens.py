"""Pictures of the Intacct screens each wizard step talks about, taken from the simulator's screens (Playwright).

Each picture is the simulator's screen for a step with the part to change outlined in red, so the pictures
follow the screens whenever they change: run this again and commit the PNGs. The same script takes the README's
two screenshots (the wizard's step 6 with a live validation, and the support dashboard).

    .venv/bin/python scripts/intacct_screens.py --base http://127.0.0.1:8000     # against `make run`'s demo

The browser tests call capture_steps() on the live test server (tests/wizard/test_admin_alone.py), so a screen
that no longer has the outlined part fails a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from wizard.pictures import SCREENS  # noqa: E402 - plain Python, no Django: what each step's picture shows

OUT = ROOT / "static" / "img" / "intacct"
DOCS = ROOT / "docs"
HIGHLIGHT = "outline: 4px solid #d93025; outline-offset: 4px; border-radius: 4px;"




def chromium_path() -> str:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium") or ""):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("Chromium not found: run `make browser` or set CHROMIUM_PATH.")


def capture_steps(page, sim_base: str, company_id: str, out_dir: Path = OUT) -> list[Path]:
    """One PNG per step (step-N.png) of the simulator's screen with the part to change outlined."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1000, "height": 700})
    written = []
    for screen in SCREENS:
        page.goto(f"{sim_base}/companies/{company_id}/{screen.path}")
        target = page.locator(screen.selector)
        target.scroll_into_view_if_needed()
        target.evaluate("(element, style) => element.setAttribute('style', style)", HIGHLIGHT)
        box = target.bounding_box()
        top = max(0, box["y"] - 120)
        clip = {"x": 0, "y": top, "width": 1000, "height": min(560, box["y"] - top + box["height"] + 40)}
        path = out_dir / f"step-{screen.step}.png"
        page.screenshot(path=str(path), clip=clip)
        written.append(path)
    return written


def capture_readme(page, base: str, admin: tuple[str, str], support: tuple[str, str], slug: str,
                   docs: Path = DOCS) -> None:
    """The README's pictures: the admin's step 6 with its latest validation, the support dashboard."""
    def sign_in(username: str, password: str) -> None:
        page.context.clear_cookies()
        page.goto(f"{base}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()

    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(*admin)
    page.goto(f"{base}/organisations/{slug}/setup/step-6/")
    page.screenshot(path=str(docs / "wizard.png"), full_page=True)
    sign_in(*support)
    page.goto(f"{base}/support/")
    page.screenshot(path=str(docs / "dashboard.png"))


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="our app with the simulator (make run)")
    parser.add_argument("--company", default="NEW-CO", help="the simulated company whose screens are shown")
    parser.add_argument("--slug", default="demo-organisation", help="the demo organisation (README's wizard)")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"], headless=True)
        page = browser.new_page()
        for path in capture_steps(page, f"{args.base}/simulator", args.company):
            print(path.relative_to(ROOT))
        capture_readme(page, args.base, ("demo-admin", "connect-demo-admin"), ("demo-support", "connect-demo-support"),
                       args.slug)
        print("docs/wizard.png docs/dashboard.png")
        browser.close()


if __name__ == "__main__":
    main()
