"""JupyterLab itself, in a real browser, as a student uses it.

Starts scripts/jupyter.sh (JupyterLab with the Rust kernel, on a fresh embedded
broker), opens KafkaDemo.ipynb in headless Chromium (Debian's `chromium`, driven
by playwright: no browser download), runs all cells from the Run menu, waits for
the comparison table to render as HTML, then re-runs the cells from the first
consumer to the end (Run > Run Selected Cell and All Below) and checks that the
table gained a row per new run. Fails on an error output, a panic, or a timeout;
on failure a screenshot goes to reports/browser-failure.png.

    browser_test.py [--timeout-s SECONDS]

The notebook file is left as it was: autosave is off in a throwaway JupyterLab
settings folder, and the file is restored if anything wrote to it.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "KafkaDemo.ipynb"
REPORTS = ROOT / "reports"
TABLE_TITLE = "earliest vs latest"
# Where the re-run starts: the cell that makes the first consumer.
FIRST_CONSUMER = 'fresh_group_id("earliest")'


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url, deadline, server):
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"scripts/jupyter.sh exited with {server.returncode}; see reports/browser-jupyter.log")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("JupyterLab did not answer in time; see reports/browser-jupyter.log")


# Runs in the page: the state of every code cell and what the outputs say.
CELL_STATE_JS = """
() => {
  const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
  // evcxr reports a compile error, and a cell whose `?` returns an error, on
  // stderr (the cell still "succeeds"); the lab's cells write nothing else there.
  const errors = [...document.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')]
      .map(e => e.textContent).filter(t => t.trim() !== '');
  const panics = [...document.querySelectorAll('.jp-OutputArea-output')]
      .map(e => e.textContent).filter(t => t.includes('panicked at'));
  const tables = [...document.querySelectorAll('.jp-OutputArea-output div.kafka-lab')]
      .filter(d => (d.querySelector('h4') || {}).textContent === TITLE)
      .map(d => d.querySelectorAll('tbody tr').length);
  return {prompts, errors, panics, tables};
}
""".replace("TITLE", json.dumps(TABLE_TITLE))


def wait_until_idle(page, deadline, what):
    """Waits until no code cell is queued or running; fails on an error or a panic."""
    last = None
    while time.monotonic() < deadline:
        state = page.evaluate(CELL_STATE_JS)
        if state["errors"] or state["panics"]:
            raise RuntimeError(f"{what}: {(state['errors'] + state['panics'])[0][:2000]}")
        busy = [p for p in state["prompts"] if "*" in p]
        if not busy and state["prompts"] and all(p.strip() not in ("", "[ ]:") for p in state["prompts"]):
            return state
        if busy != last:
            last = busy
        time.sleep(2)
    raise RuntimeError(f"{what}: still running after the timeout; prompts {page.evaluate(CELL_STATE_JS)['prompts']}")


def run_menu(page, item):
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def browser_session(page, url, deadline):
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    # The kernel must be connected before "Run All" queues anything (else
    # JupyterLab asks which kernel to start): the status bar says so.
    page.get_by_text("Rust | Idle").wait_for(timeout=300_000)
    run_menu(page, "Run All Cells")
    state = wait_until_idle(page, deadline, "Run All Cells")
    if not state["tables"]:
        raise RuntimeError(f"no '{TABLE_TITLE}' table rendered as HTML after Run All")
    first_rows = state["tables"][-1]
    print(f"    Run All: {len(state['prompts'])} code cells ran; the comparison has {first_rows} rows", flush=True)

    page.locator(".jp-Notebook .jp-CodeCell", has_text=FIRST_CONSUMER).first.locator(".jp-InputPrompt").click()
    run_menu(page, "Run Selected Cell and All Below")
    time.sleep(3)
    state = wait_until_idle(page, deadline, "re-running from the first consumer")
    rows = state["tables"][-1] if state["tables"] else 0
    print(f"    re-run from the first consumer: the comparison has {rows} rows", flush=True)
    if rows != 2 * first_rows:
        raise RuntimeError(f"the comparison should keep a row per run: {first_rows} rows, then {rows} after a re-run")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout-s", type=float, default=1500)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("Debian's chromium is missing: scripts/setup-notebooks.sh installs it")

    REPORTS.mkdir(exist_ok=True)
    original = NOTEBOOK.read_bytes()
    work = Path(tempfile.mkdtemp(prefix="kafka-lab-browser-"))
    settings = work / "settings" / "@jupyterlab" / "docmanager-extension"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    news = work / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(work / "settings"),
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        KAFKA_LAB_DATA=str(work / "broker"),
        EVCXR_TMPDIR=os.environ.get("EVCXR_TMPDIR", str(Path.home() / ".cache/kafka-lab/evcxr-work")),
    )
    log = open(REPORTS / "browser-jupyter.log", "w")
    server = subprocess.Popen(
        ["scripts/jupyter.sh", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
         f"--IdentityProvider.token={token}"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    deadline = started + args.timeout_s
    failed = None
    try:
        wait_for_server(f"http://127.0.0.1:{port}/api/status?token={token}", deadline, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            try:
                browser_session(page, f"http://127.0.0.1:{port}/lab/tree/KafkaDemo.ipynb?token={token}", deadline)
            except Exception as error:  # noqa: BLE001 - any failure gets its screenshot
                page.screenshot(path=str(REPORTS / "browser-failure.png"), full_page=True)
                failed = error
            finally:
                browser.close()
    except Exception as error:  # noqa: BLE001
        failed = error
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        if NOTEBOOK.read_bytes() != original:
            NOTEBOOK.write_bytes(original)
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    if failed:
        print(f"browser test FAILED after {elapsed:.0f} s: {failed}\n"
              f"screenshot: reports/browser-failure.png; JupyterLab log: reports/browser-jupyter.log", file=sys.stderr)
        sys.exit(1)
    print(f"browser test ok in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
