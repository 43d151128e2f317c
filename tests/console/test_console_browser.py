"""The console in a real headless browser over a real federation: what a person sees on each
page, a booking's path clicked from the live list, and a dead letter requeued from the page.

Selenium's calls block, so they run in a thread while the federation and the console serve in
the test's event loop. Screenshots go to $SCFED_SCREENSHOTS (else tests-artifacts/console).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from services.federation import Agency
from tests.console.browser import chromium, screenshots_dir
from tests.console.support import serving_console
from tests.federation import Federation
from tests.scenario import scenario_in

pytestmark = pytest.mark.browser
CA = "CA0190000"
T = TypeVar("T")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A fresh headless Chromium, quit afterwards."""
    driver = chromium(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


def _wait(
    driver: webdriver.Chrome, what: Callable[[webdriver.Chrome], T], timeout: float = 15
) -> T:
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(what)


def _texts(elements: list[WebElement]) -> list[str]:
    return [e.text for e in elements]


async def test_a_person_follows_the_federation_a_booking_and_a_dead_letter(
    federation: Federation, browser: webdriver.Chrome
) -> None:
    shots = screenshots_dir()
    async with scenario_in(federation) as scenario:
        # A person IDENT knows with a Level 1 conviction: SRE, IDR/IAR, then a detainer.
        matched = scenario.subject()
        await scenario.in_ident(matched, "ENTRY_WITHOUT_INSPECTION")
        await scenario.in_iafis(matched, [("1201", 1825)])
        tcn = await scenario.book(matched, CA, ("2399",))
        await scenario.final(tcn)
        await scenario.detainers_for(tcn, CA, expect=1)
        # CJIS refuses to send the next SRE for good: a dead letter in its outbox.
        cjis = federation.hosts[Agency.CJIS_IAFIS].http_url
        async with httpx.AsyncClient() as client:
            rule = {
                "action": "status",
                "side": "send",
                "message_type": "SRE",
                "code": "PERMISSION_DENIED",
                "count": 1,
            }
            assert (await client.post(f"{cjis}/v1/faults", json=rule)).status_code == 201
        stuck = await scenario.book(scenario.subject(), CA, ("5404",))
        await scenario.quiet()

        async with serving_console(federation.http_urls()) as console:

            def overview() -> None:
                browser.get(console + "/")
                _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.ready"))
                names = _texts(browser.find_elements(By.CSS_SELECTOR, "tr.ready td.name"))
                assert sorted(names) == sorted(a.value for a in Agency), names
                dead = browser.find_element(
                    By.CSS_SELECTOR, 'tr[data-service="cjis_iafis"] td.dead'
                )
                assert dead.text == "1"
                # The live refresh has filled in a rate since the page was rendered.
                _wait(browser, lambda d: "updated" in d.find_element(By.ID, "updated").text)
                browser.save_screenshot(str(shots / "overview.png"))

            def booking_path() -> None:
                browser.find_element(By.LINK_TEXT, "Bookings").click()
                link = _wait(browser, lambda d: d.find_element(By.LINK_TEXT, tcn))
                listed = _texts(browser.find_elements(By.CSS_SELECTOR, "a.booking"))
                assert tcn in listed and stuck in listed
                browser.save_screenshot(str(shots / "bookings.png"))
                link.click()
                _wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "svg.sequence"))
                assert browser.find_element(By.ID, "tcn").text == tcn
                lanes = _texts(browser.find_elements(By.CSS_SELECTOR, "svg.sequence .lane text"))
                assert lanes == ["LEA", "SIB", "CJIS/IAFIS", "IDENT", "LESC", "ICE field"]
                arrows = {
                    (
                        g.get_attribute("data-tot"),
                        g.get_attribute("data-from"),
                        g.get_attribute("data-to"),
                    )
                    for g in browser.find_elements(By.CSS_SELECTOR, "svg.sequence g.message")
                }
                for arrow in (
                    ("BOOKING", "lea", "sib"),
                    ("CAR", "sib", "cjis_iafis"),
                    ("SRE", "cjis_iafis", "sib"),
                    ("IAQ", "cjis_iafis", "lesc"),
                    ("I-247", "ice_field", "sib"),
                ):
                    assert arrow in arrows, (arrow, arrows)
                car = browser.find_element(By.CSS_SELECTOR, 'g.message[data-tot="CAR"] text')
                assert car.text.startswith("CAR · ") and car.text.endswith(("ms", " s"))
                browser.save_screenshot(str(shots / "booking.png"))

            def requeue() -> None:
                browser.find_element(By.LINK_TEXT, "Dead letters").click()
                row = _wait(
                    browser,
                    lambda d: d.find_element(By.CSS_SELECTOR, "#cjis_iafis tr.dead-letter"),
                )
                assert row.get_attribute("data-tot") == "SRE" and stuck in row.text
                browser.save_screenshot(str(shots / "dead-letters.png"))
                browser.find_element(
                    By.CSS_SELECTOR, 'button.requeue[data-service="cjis_iafis"]'
                ).click()
                result = _wait(browser, lambda d: d.find_element(By.ID, "requeue-result"))
                assert result.text == "cjis_iafis: 1 dead letter(s) requeued"
                browser.save_screenshot(str(shots / "requeued.png"))

            def measures() -> None:
                browser.find_element(By.LINK_TEXT, "Measures").click()
                _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 5)
                level_1 = browser.find_element(
                    By.CSS_SELECTOR, 'tr[data-key="level_1_aliens_identified"] td.value'
                )
                assert level_1.text == "1"
                # A second sample arrives with the live refresh: the lines are drawn.
                _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "svg.lines polyline"))
                browser.save_screenshot(str(shots / "measures.png"))

            await asyncio.to_thread(overview)
            await asyncio.to_thread(booking_path)
            await asyncio.to_thread(requeue)
            # The requeued SRE reaches the SIB: the stuck booking is answered.
            assert (await scenario.final(stuck))["status"] == "answered"
            await asyncio.to_thread(measures)
