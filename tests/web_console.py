"""Drives kumod's web console in headless Chromium (Selenium + Debian's
chromium-driver) through the walkthrough of tests/tests/web_console.rs.

usage: web_console.py BASE_URL TOKEN_FILE ZIP SCREENSHOT_DIR
Prints one JSON object of what it saw; any failed check exits non-zero
with the page's text.
"""

import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, TOKEN_FILE, ZIP, SHOTS = sys.argv[1:5]
TOKEN = open(TOKEN_FILE).read().split()[0]
NAME = "thumbs"
WAIT = 60

options = webdriver.ChromeOptions()
for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
             "--window-size=1280,800", "--disable-gpu"):
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
driver.set_window_size(1280, 800)
seen = {}


def fail(message):
    body = driver.find_element(By.TAG_NAME, "body").text if driver else ""
    raise AssertionError(f"{message}\nURL {driver.current_url}\n--- page ---\n{body}")


def check(condition, message):
    if not condition:
        fail(message)


def wait_for(what, predicate, timeout=WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate())
    except Exception:  # noqa: BLE001 - report the page
        fail(f"timed out waiting for {what}")


def text(css):
    """The text of the first element matching `css`, "" while there is none
    (or while the page it was found in is being replaced)."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except WebDriverException:
        # A stale element, or a node of the page being replaced.
        return ""


def shot(name):
    driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def go(path):
    driver.get(BASE + path)


def fill(css, value):
    element = driver.find_element(By.CSS_SELECTOR, css)
    element.clear()
    element.send_keys(value)


def click(css):
    driver.find_element(By.CSS_SELECTOR, css).click()


def no_alert():
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def invoke(template=None, event=None, invocation_type=None):
    go(f"/console/fn/{NAME}/test")
    if template:
        Select(driver.find_element(By.ID, "template")).select_by_value(template)
    if event is not None:
        fill("#event", event)
    if invocation_type:
        Select(driver.find_element(By.ID, "invocation-type")).select_by_value(invocation_type)
    click("#invoke")
    wait_for("the invoke result", lambda: text("#result-status"))
    return text("#result-status")


def invocations_total():
    go(f"/console/fn/{NAME}/graphs")
    return float(driver.find_element(By.ID, "chart-invocations").get_attribute("data-total"))


try:
    # Sign in: every page sends a browser without a session to the sign-in form.
    go("/console/")
    wait_for("the sign-in page", lambda: "/console/login" in driver.current_url)
    shot("sign-in")
    fill("#token", "not-the-token")
    click("#sign-in")
    wait_for("the wrong token's refusal", lambda: "not a control token" in text("#notice"))
    fill("#token", TOKEN)
    click("#sign-in")
    wait_for("the functions list", lambda: driver.title.startswith("Functions"))

    # Create a function by uploading its zip.
    go("/console/new")
    fill("#name", NAME)
    fill("#runtime", "python3")
    fill("#handler", "lambda_function.handler")
    driver.find_element(By.ID, "zip-file").send_keys(ZIP)
    click("#create")
    wait_for("the function page", lambda: "Created" in text("#notice"))
    go("/console/")
    check(NAME in text("#functions"), "the new function is not listed")
    shot("functions")
    fill("#search", "no-such")
    driver.find_element(By.ID, "search").submit()
    wait_for("an empty search", lambda: "q=no-such" in driver.current_url)
    check(NAME not in text("#functions"), "the search did not filter")
    fill("#search", NAME[:3])
    driver.find_element(By.ID, "search").submit()
    wait_for("the search", lambda: NAME in text("#functions"))

    # Edit its memory (and no async retries, for the dead letter below).
    go(f"/console/fn/{NAME}")
    fill("#config-memory", "256")
    fill("#config-retries", "0")
    click("#save-config")
    wait_for("the saved configuration", lambda: "Configuration saved" in text("#notice"))
    check(text("#memory-value") == "256 MB", "memory did not change")

    # Test with the S3 put template: result and REPORT.
    status = invoke(template="s3-put")
    check("succeeded" in status, f"S3 test event failed: {status}")
    seen["result"] = json.loads(text("#result-payload"))
    seen["report"] = text("#report")
    check("Billed Duration" in seen["report"] and "256 MB" in seen["report"], "no REPORT figures")
    check("START RequestId" in text("#log-tail"), "no log tail")
    shot("test")
    # Save the event, then pick it again from the saved events.
    fill("#save-as", "s3-sample")
    click("#save-event")
    wait_for("the saved event", lambda: "Saved test event s3-sample" in text("#notice"))
    go(f"/console/fn/{NAME}/test")
    fill("#event", "{}")
    Select(driver.find_element(By.ID, "saved")).select_by_value("s3-sample")
    check("HappyFace.jpg" in driver.find_element(By.ID, "event").get_attribute("value"),
          "the saved event did not load")

    # The log history shows the handler's <script> line as text.
    go(f"/console/fn/{NAME}/logs")
    check("<script>alert(1)</script> got" in text("#log-lines"), "the log line is missing")
    check(no_alert(), "a log line ran as script")
    # Live tail: a line printed by an invoke in another tab appears.
    wait_for("the live tail to connect", lambda: driver.find_element(By.ID, "tail").get_attribute("data-state") == "live")
    logs_tab = driver.current_window_handle
    driver.switch_to.new_window("tab")
    invoke(event=json.dumps({"Records": [{"s3": {"bucket": {"name": "tail-bucket"}, "object": {"key": "tail-key"}}}]}))
    driver.close()
    driver.switch_to.window(logs_tab)
    wait_for("the live tail line", lambda: "<script>alert(1)</script> got tail-key" in text("#tail"))
    check(no_alert(), "a tailed line ran as script")
    seen["tail"] = text("#tail")
    shot("logs")

    # Publish version 1 and point an alias at it.
    go(f"/console/fn/{NAME}")
    fill("#version-description", "first")
    click("#publish")
    wait_for("version 1", lambda: "Published version 1" in text("#notice"))
    fill("#alias-name", "live")
    fill("#alias-version", "1")
    click("#save-alias")
    wait_for("the alias", lambda: "Alias live points to version 1" in text("#notice"))

    # Break it, editing its file in the page: the error document.
    current = driver.find_element(By.ID, "code-source").get_attribute("value")
    check("print(\"<script>alert(1)</script> got\", key)" in current, f"the code editor holds {current!r}")
    check(driver.find_element(By.ID, "code-file-name").get_attribute("value") == "lambda_function.py",
          "the code editor names another file")
    fill("#code-source", "def handler(event, context):\n    raise RuntimeError('broken on purpose')\n")
    click("#deploy-code")
    wait_for("the new code", lambda: "Code deployed" in text("#notice"))
    status = invoke(template="scheduled-event")
    check("failed" in status, f"the broken function did not fail: {status}")
    seen["error"] = json.loads(text("#result-payload"))
    shot("error")

    # Publish version 2 and move the alias to it.
    go(f"/console/fn/{NAME}")
    click("#publish")
    wait_for("version 2", lambda: "Published version 2" in text("#notice"))
    fill("#alias-name", "live")
    fill("#alias-version", "2")
    click("#save-alias")
    wait_for("the moved alias", lambda: "Alias live points to version 2" in text("#notice"))
    seen["aliases"] = text("#aliases")
    shot("function")

    # The invocation graph counts a new invocation.
    before = invocations_total()
    invoke(template="sqs")
    after = invocations_total()
    check(after == before + 1, f"the invocation graph went from {before} to {after}")
    seen["graph"] = [before, after]
    shot("graphs")
    click("#span-day")
    wait_for("the day's graphs", lambda: "15-minute steps" in text("main"))
    day = float(driver.find_element(By.ID, "chart-invocations").get_attribute("data-total"))
    check(day == after, f"the day's invocations {day} differ from the hour's {after}")

    # An asynchronous invoke of the broken function becomes a dead letter; replay it.
    status = invoke(template="sns", invocation_type="Event")
    check("Queued" in status, f"the async invoke was not queued: {status}")

    def dead_letter_listed():
        go(f"/console/fn/{NAME}")
        return driver.find_elements(By.CSS_SELECTOR, "#dead-letters button.replay")

    wait_for("a dead letter", dead_letter_listed)
    seen["dead_letter"] = text("#dead-letters")
    click("#dead-letters button.replay")
    wait_for("the replay", lambda: "Replayed 1 event(s)" in text("#notice"))

    go("/console/cluster")
    check(text("#agents").count("ready") >= 1, "no ready agent listed")
    shot("cluster")
    # Drain the agent, then undrain it.
    click("#agents button")
    wait_for("the drain", lambda: "is drain" in text("#notice"))
    check("drain" in text("#agents"), "the agent's state did not change")
    click("#agents button")
    wait_for("the undrain", lambda: "is ready" in text("#notice"))

    # Sign out, and be refused afterwards.
    click("#sign-out")
    wait_for("the sign-in page after signing out", lambda: "Signed out" in text("#notice"))
    go(f"/console/fn/{NAME}")
    wait_for("the refusal", lambda: "/console/login" in driver.current_url)
    seen["after_sign_out"] = driver.current_url
    print(json.dumps(seen))
finally:
    driver.quit()
