"""Retake the README's screenshots from the real system on the sandbox.

    .venv/bin/python -m docs.screenshots.take      (from the repository root)

Starts the sandbox and run.py as processes (like the end-to-end tests), posts a morning of
orders in three groups, approves and cancels some, and saves the dashboard and orders pages in
the bot's default language (Bengali) into docs/screenshots/.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from playwright.async_api import async_playwright

from tests.browser import CHROMIUM_ARGS, DESKTOP, chromium_path
from tests.e2e import PASSWORD, Bot, Sandbox, wait_for

OUT = Path(__file__).resolve().parent
RESELLERS = [("8801711000001@lid", "Rahim"), ("8801711000002@lid", "Karim"), ("8801711000003@lid", "Sumi"),
             ("8801711000004@lid", "Nasrin")]


def stage(sandbox: Sandbox, bot: Bot) -> None:
    groups = [sandbox.create_group(name) for name in ("রহিম স্টোর", "Karim Telecom", "Sumi Gaming")]
    for i, amount in enumerate((10, 25, 50, 100, 20, 5, 310, 40, 60, 15, 80, 200)):
        sender, name = RESELLERS[i % len(RESELLERS)]
        sandbox.post(groups[i % len(groups)], sender, f".{amount}", name)
    wait_for(lambda: len(bot.orders()) == 12, 20, "the demo orders")
    for order_id in ("A1", "B1", "C1", "A2", "B2"):
        assert bot.api.post(f"/api/approve/{order_id}")[0] == 200
    assert bot.api.post("/api/orders/C2/process")[0] == 200
    assert bot.api.post("/api/orders/A3/cancel")[0] == 200
    wait_for(lambda: sum(o["status"] == "completed" for o in bot.orders()) == 5, 20, "deliveries")


async def shoot(bot: Bot) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport=DESKTOP)
            base = f"http://127.0.0.1:{bot.port}"
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "admin")
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/")
            await asyncio.sleep(12)  # a checkpoint of check counts, and a refresh of the page
            await page.reload()
            await page.screenshot(path=OUT / "dashboard.png")
            await page.goto(f"{base}/orders")
            await page.screenshot(path=OUT / "orders.png")
        finally:
            await browser.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sandbox = Sandbox(work / "sandbox.json", work / "sandbox.log")
        sandbox.start()
        bot = Bot(work / "data", sandbox.url, work / "bot.log")
        try:
            bot.start()
            stage(sandbox, bot)
            asyncio.run(shoot(bot))
        finally:
            try:
                bot.stop()
            finally:
                sandbox.stop()
    print(f"saved {OUT / 'dashboard.png'} and {OUT / 'orders.png'}")


if __name__ == "__main__":
    main()
