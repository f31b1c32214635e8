"""JupyterLab in a real browser: the README's main command (`tandem lab`) started on a free
port, driven by Playwright through Debian's Chromium (headless; no browser is downloaded).
Runs every shipped notebook from the menu, interrupts and restarts from the toolbar and the
menu, completes with Tab, and keeps a screenshot of each notebook in tests/artifacts/."""
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import nbformat
import pytest
from PIL import Image, ImageStat
from playwright.sync_api import expect, sync_playwright

ROOT = pathlib.Path(__file__).resolve().parent.parent
TANDEM = ROOT / "target" / "release" / "tandem"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("TANDEM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own connections go nowhere on a closed network; these keep it quiet and quick.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]

# A line each notebook prints once it has run to the end (its last measuring cells).
EXPECTED_LINES = {
    "01-start-here": "make toast completed",
    "02-synchronous": "download C completed",
    "03-asynchronous": "download A completed",
    "04-blocking-in-async": "heartbeat completed",
    "05-cpu-vs-io": "4 thread(s):",
    "06-real-io": "fetched 7 pages",
    "07-many-connections": "connections at once",
    "08-choosing": "· threads ",
    "09-inside-await": "the sleeper 2 times",
    "10-cancel-and-limit": "at most 3 requests at once",
    "11-debug-this": "dashboard ready in",
}

# Cells that show an error or stderr on purpose: rustc's errors in cells tagged
# `raises-exception` (Run All goes on past them), and a panic in a spawned task.
SHOWS_ERRORS = ("raises-exception", "claim:errors-panic")


def shown_on_purpose(cell):
    return any(tag in cell.metadata.get("tags", []) for tag in SHOWS_ERRORS)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """`tandem lab` running on a copy of notebooks/, and what it printed."""

    def __init__(self, root, settings):
        self.root = root
        self.lines = []
        # The browser's theme and layout changes go to a scratch place, not the user's.
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(settings / "workspaces"))
        self.process = subprocess.Popen(
            [str(TANDEM), "lab", "--no-browser", "--port", str(free_port()),
             "--notebooks", str(root)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_for_url(timeout=600)

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    def _wait_for_url(self, timeout):
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"(http://127\.0\.0\.1:\d+/lab\?token=\w+)")
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := pattern.search(line):
                    return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError("JupyterLab printed no URL:\n" + "".join(self.lines[-40:]))

    def kernel_pids(self):
        """The kernels JupyterLab started (its child processes)."""
        found = subprocess.run(["pgrep", "-P", str(self.process.pid)],
                               capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    @property
    def base(self):
        return self.url.split("/lab?")[0]

    def stop(self):
        """Ctrl-C: JupyterLab shuts down its kernels and exits. (On a terminal it asks
        first, hence "Ctrl-C twice" in the README; without one it stops at the first.)"""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError("JupyterLab did not stop on Ctrl-C")


def running(pid):
    """Whether process `pid` exists and has not exited (a zombie has)."""
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text(errors="replace")
    except OSError:
        return False
    return "State:\tZ" not in status


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", scratch / "notebooks")
    lab = Lab(scratch / "notebooks", scratch)
    yield lab
    kernels = lab.kernel_pids()
    assert kernels, "the tests started kernels; JupyterLab must be their parent"
    code = lab.stop()
    assert code in (0, 130, -signal.SIGINT), "".join(lab.lines[-20:])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(running(pid) for pid in kernels):
        time.sleep(0.2)
    assert [pid for pid in kernels if running(pid)] == [], \
        "Ctrl-C left kernels running:\n" + "".join(lab.lines[-20:])


@pytest.fixture(scope="module")
def browser_context(lab):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(lab.url)  # the token becomes a cookie for every later page
        page.wait_for_selector(".jp-LabShell")
        page.close()
        yield context
        browser.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    yield page
    page.close()


def open_in_lab(page, lab, path):
    page.goto(f"{lab.base}/lab/tree/{path}?reset")
    panel = page.locator(".jp-NotebookPanel:visible")
    panel.wait_for()
    # The kernel named in the notebook's metadata is started and reaches idle.
    page.locator(".jp-NotebookPanel:visible .jp-Toolbar-kernelName",
                 has_text="Rust (tandem)").wait_for()
    wait_for_idle(page)
    return panel


def wait_for_idle(page, timeout=600):
    page.wait_for_function(
        """() => {
            const status = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) '
                + '.jp-Notebook-ExecutionIndicator');
            return status && status.getAttribute('data-status') === 'idle';
        }""", timeout=timeout * 1000)


def menu(page, top, item):
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
    page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile(f"^{item}")).first.click()


def wait_until_all_cells_ran(page, timeout=600):
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll(
                '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0
                && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
        }""", timeout=timeout * 1000)
    wait_for_idle(page)


def assert_not_blank(path):
    image = Image.open(path).convert("RGB")
    extrema = ImageStat.Stat(image.convert("L")).extrema[0]
    assert extrema[1] - extrema[0] > 100, f"{path} has no contrast"
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 50, f"{path} looks blank"


def test_launcher_shows_the_kernel_with_its_logo(page, lab):
    page.goto(f"{lab.base}/lab?reset")
    card = page.locator(".jp-LauncherCard[data-category='Notebook']",
                        has_text="Rust (tandem)")
    card.wait_for()
    logo = card.locator("img")
    assert "kernelspecs/tandem/logo" in logo.get_attribute("src")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=logo.element_handle())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_all_cells_in_the_browser(page, lab, path):
    open_in_lab(page, lab, path.name)
    cells = page.locator(".jp-NotebookPanel:visible .jp-CodeCell")
    expect(cells).to_have_count(sum(c.cell_type == "code"
                                    for c in nbformat.read(path, as_version=4).cells))
    # Rust syntax highlighting: the editor splits a cell into styled tokens.
    assert cells.first.locator(".cm-line span").count() > 0

    menu(page, "Run", "Run All Cells")
    wait_until_all_cells_ran(page)
    outputs = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    # Errors and stderr both render as stderr text; the lessons print neither, but where
    # they show them on purpose.
    on_purpose = [c for c in nbformat.read(path, as_version=4).cells if shown_on_purpose(c)]
    # (The attribute is on the output element itself, not inside it.)
    stderr = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output"
                          "[data-mime-type='application/vnd.jupyter.stderr']").count()
    assert (stderr > 0) == bool(on_purpose), stderr
    assert page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output",
                        has_text=EXPECTED_LINES[path.stem]).count() >= 1
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(path, as_version=4).cells)
    assert page.locator(".jp-NotebookPanel:visible .tandem-timing").count() >= min(3, code_cells)
    bars = page.locator(".jp-NotebookPanel:visible .tandem-timeline svg rect.bar")
    assert bars.count() >= 2, "timelines are drawn as inline <svg>"

    # Saved from the browser, the notebook holds what ran: no error output anywhere.
    page.keyboard.press("Control+s")
    code = saved_code_cells(lab.root / path.name)
    assert all(c.execution_count for c in code), "the saved notebook has every cell run"
    assert not [o for c in code for o in c.outputs if not shown_on_purpose(c)
                and (o.output_type == "error" or o.get("name") == "stderr")]
    assert all(any(o.output_type == "error" for o in c.outputs)
               for c in code if "raises-exception" in c.metadata.get("tags", []))

    bars.last.scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{path.stem}.png"
    page.screenshot(path=str(shot))
    assert_not_blank(shot)


def saved_code_cells(path, timeout=30):
    """The code cells of `path` once JupyterLab has saved it with outputs."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            notebook = nbformat.read(path, as_version=4)
        except ValueError:  # nbformat.reader.NotJSONError included
            # The server may be part-way through writing the file: read it again.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
            continue
        code = [c for c in notebook.cells if c.cell_type == "code"]
        if all(c.execution_count for c in code) or time.monotonic() > deadline:
            return code
        time.sleep(0.2)


def run_in_new_cell(page, code):
    """Types `code` into the active cell's editor and runs it (Shift+Enter moves on)."""
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active .cm-content")
    editor.click()
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")


def output_of_cell(page, index):
    return page.locator(".jp-NotebookPanel:visible .jp-CodeCell").nth(index) \
        .locator(".jp-OutputArea")


def test_interrupt_restart_and_tab_completion_in_a_new_notebook(page, lab):
    page.goto(f"{lab.base}/lab?reset")
    page.locator(".jp-LauncherCard[data-category='Notebook']", has_text="Rust (tandem)").click()
    page.locator(".jp-NotebookPanel:visible .jp-Toolbar-kernelName",
                 has_text="Rust (tandem)").wait_for()
    wait_for_idle(page)

    run_in_new_cell(page, "let completion_apple = 1;\nlet completion_apricot = 2;")
    run_in_new_cell(page, 'blocking_task("long wait", 60.0);')
    output_of_cell(page, 1).get_by_text("long wait started").wait_for()
    asked = time.monotonic()
    page.locator(".jp-NotebookPanel:visible [data-command='notebook:interrupt-kernel']").click()
    output_of_cell(page, 1).get_by_text("Interrupted").wait_for(timeout=10_000)
    assert time.monotonic() - asked < 5
    wait_for_idle(page)

    # The variables defined before the interrupt are still there, and Tab offers them.
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active .cm-content")
    editor.click()
    page.keyboard.insert_text("completion_ap")
    page.keyboard.press("Tab")
    completer = page.locator(".jp-Completer:visible")
    completer.wait_for()
    offered = completer.locator(".jp-Completer-item").all_inner_texts()
    assert any("completion_apple" in o for o in offered)
    assert any("completion_apricot" in o for o in offered)
    page.keyboard.press("Escape")
    page.keyboard.insert_text("ple + completion_apricot")
    page.keyboard.press("Shift+Enter")
    output_of_cell(page, 2).get_by_text("3", exact=True).wait_for()

    menu(page, "Kernel", "Restart Kernel")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    wait_for_idle(page)
    run_in_new_cell(page, 'println!("running after the restart");')
    output_of_cell(page, 3).get_by_text("running after the restart").wait_for(timeout=120_000)
    # A new kernel process: the variables of the old one are gone.
    run_in_new_cell(page, "completion_apple")
    output_of_cell(page, 4).get_by_text("cannot find value").wait_for()


def test_help_menu_links_to_rust_and_tokio_docs_and_the_start_page(page, lab):
    open_in_lab(page, lab, "01-start-here.ipynb")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Help$")).click()
    items = page.locator(".lm-Menu:visible .lm-Menu-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    for wanted in ("Rust standard library", "tokio documentation", "tandem lessons"):
        assert any(wanted in item for item in items), items


def test_the_event_loop_grows_live_and_draws_the_tutorials_examples(page, lab):
    page.goto(f"{lab.base}/lab?reset")
    page.locator(".jp-LauncherCard[data-category='Notebook']", has_text="Rust (tandem)").click()
    page.locator(".jp-NotebookPanel:visible .jp-Toolbar-kernelName",
                 has_text="Rust (tandem)").wait_for()
    wait_for_idle(page)
    # Live: a task ticking for 6 s. Its picture is there while the cell still runs ([*]),
    # and its bars grow in place.
    run_in_new_cell(page, "let ticker = tokio::spawn(async {\n"
                          "    for _ in 0..60 { tokio::time::sleep(std::time::Duration::from_millis(100)).await; }\n"
                          "});\n"
                          "ticker.await.unwrap();")
    picture = output_of_cell(page, 0).locator(".tandem-event-loop svg")
    picture.wait_for(timeout=120_000)
    prompt = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").nth(0) \
        .locator(".jp-InputPrompt")
    assert prompt.text_content().strip() == "[*]:", "drawn while the cell runs"
    bars = picture.locator("rect").count()
    page.wait_for_function(
        """(before) => {
            const svg = document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) '
                + '.jp-CodeCell')[0].querySelector('.tandem-event-loop svg');
            return svg && svg.querySelectorAll('rect').length > before;
        }""", arg=bars, timeout=10_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    picture.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "event-loop-live.png"))
    wait_for_idle(page)
    assert output_of_cell(page, 0).locator(".tandem-event-loop").count() == 1, "one, in place"

    # The tutorial's examples, typed in plain Rust: join! branches on one thread, and a
    # blocking sleep inside async code outlined in red and named.
    run_in_new_cell(page, "async fn fetch(name: &str, millis: u64) -> &str {\n"
                          "    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;\n"
                          "    name\n"
                          "}\n"
                          'tokio::join!(fetch("orders", 600), fetch("users", 300));')
    joined = output_of_cell(page, 1).locator(".tandem-event-loop svg")
    expect(joined.get_by_text('fetch("orders", 600)')).to_be_visible(timeout=120_000)
    wait_for_idle(page)
    joined.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "event-loop-join.png"))
    run_in_new_cell(page, "async fn pause(name: &str, millis: u64) -> &str {\n"
                          "    std::thread::sleep(std::time::Duration::from_millis(millis));\n"
                          "    name\n"
                          "}\n"
                          'tokio::join!(pause("blocking", 400), fetch("polite", 100));')
    blocked = output_of_cell(page, 2).locator(".tandem-event-loop")
    expect(blocked.locator("rect[stroke='red']")).to_have_count(1, timeout=120_000)
    expect(blocked.get_by_text("held the event loop")).to_be_visible()
    wait_for_idle(page)
    blocked.scroll_into_view_if_needed()
    shot = SCREENSHOTS / "event-loop-blocking.png"
    page.screenshot(path=str(shot))
    assert_not_blank(shot)


def luminance(css_colour):
    """Relative luminance (WCAG) of `rgb(r, g, b)` or `#rrggbb`."""
    if css_colour.startswith("#"):
        channels = [int(css_colour[i:i + 2], 16) for i in (1, 3, 5)]
    else:
        channels = [int(float(c)) for c in re.findall(r"[\d.]+", css_colour)[:3]]
    linear = [(c / 255 / 12.92) if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4
              for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_timeline_reads_in_the_dark_theme(page, lab):
    page.goto(f"{lab.base}/lab?reset")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
    page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile("^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile("^JupyterLab Dark$")).click()
    page.wait_for_selector("body[data-jp-theme-light='false']", state="attached")
    try:
        page.locator(".jp-LauncherCard[data-category='Notebook']",
                     has_text="Rust (tandem)").click()
        page.locator(".jp-NotebookPanel:visible .jp-Toolbar-kernelName",
                     has_text="Rust (tandem)").wait_for()
        wait_for_idle(page)
        run_in_new_cell(page, 'tokio::join!(async_task("A", 0.5), async_task("B", 0.25));')
        timeline = output_of_cell(page, 0).locator(".tandem-timeline svg")
        expect(timeline.locator("rect.bar")).to_have_count(2, timeout=120_000)
        caption = timeline.locator("text").first.get_attribute("fill")
        # The notebook's background is the theme's first layout colour.
        background = page.evaluate("""() => {
            const probe = document.createElement('div');
            probe.style.background = 'var(--jp-layout-color0)';
            document.body.appendChild(probe);
            const colour = getComputedStyle(probe).backgroundColor;
            probe.remove();
            return colour;
        }""")
        assert luminance(background) < 0.1, f"a dark background, not {background}"
        lighter, darker = sorted([luminance(caption), luminance(background)], reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 3, "the caption must stand out"
        timeline.scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / "timeline-dark-theme.png"
        page.screenshot(path=str(shot))
        assert_not_blank(shot)
    finally:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Settings$")).click()
        page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile("^Theme$")).hover()
        page.locator(".lm-Menu-itemLabel:visible", has_text=re.compile("^JupyterLab Light$")).click()
