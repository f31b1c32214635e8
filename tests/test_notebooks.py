"""The shipped notebooks: stored clean, run end to end through nbclient against the
installed kernel and through `tandem run`, prove the lesson's claims with the figures they
measured, and have exercise checks that fail on the stubs (with a hint) and pass on the
solutions."""
import functools
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import time
import uuid

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ended, template_dir

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
SOLUTIONS = ROOT / "notebooks" / "solutions"
TANDEM = ROOT / "target" / "release" / "tandem"
PASS, NOT_YET = "✅ PASS", "💡 NOT YET"


def ids(path):
    return path.stem


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def role(output):
    return output.get("metadata", {}).get("tandem", {}).get("role")


def errors_where_not_expected(cells):
    """Error outputs of cells not tagged `raises-exception`; each tagged cell must fail."""
    for cell in cells:
        failed = any(o["output_type"] == "error" for o in cell["outputs"])
        if "raises-exception" in tags(cell):
            assert failed, f"{cell['id']} is tagged raises-exception but showed no error"
    return [o for c in cells if "raises-exception" not in tags(c)
            for o in c["outputs"] if o["output_type"] == "error"]


def stream_text(cell):
    return "".join(o["text"] for o in cell["outputs"] if o["output_type"] == "stream")


@functools.lru_cache(maxsize=None)
def executed_by_nbclient(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="tandem").execute()
    return nb


def run_with_tandem(path, out, *options):
    return subprocess.run([str(TANDEM), "run", str(path), "--output", str(out), *options],
                          capture_output=True, text=True, timeout=900)


def claim(nb, name):
    """The cell tagged `claim:<name>`, and the figures of its timeline."""
    cells = [c for c in nb.cells if f"claim:{name}" in tags(c)]
    assert len(cells) == 1, f"one cell tagged claim:{name}"
    timelines = [o for o in cells[0]["outputs"] if role(o) == "timeline"]
    figures = timelines[0]["metadata"]["tandem"] if timelines else None
    return cells[0], figures


def event_loop_tasks(cell):
    """The tasks of a cell's event-loop picture (the cell's future first)."""
    pictures = [o for o in cell["outputs"] if role(o) == "event-loop"]
    assert pictures, "the cell drew its event loop"
    return pictures[-1]["metadata"]["tandem"]["tasks"]


# -- stored clean -------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_is_stored_clean_with_an_exercise_and_its_solution(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "tandem"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), \
        "notebooks are stored without outputs"
    exercises = [c for c in code if "exercise" in tags(c)]
    checks = [c for c in code if "check" in tags(c)]
    assert exercises and len(checks) == len(exercises)
    assert all("todo!" not in c.source for c in exercises), "stubs run, they do not panic"

    solution = nbformat.read(SOLUTIONS / path.name, as_version=4)
    assert [c.id for c in solution.cells] == [c.id for c in nb.cells]
    for mine, theirs in zip(nb.cells, solution.cells):
        if "exercise" in tags(mine):
            assert mine.source != theirs.source, f"{mine.id}: the solution completes the stub"
        else:
            assert mine.source == theirs.source, f"{mine.id}: only exercise cells differ"


# -- run end to end ----------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_through_nbclient_and_its_checks_give_hints(path):
    nb = executed_by_nbclient(path.name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert errors_where_not_expected(code) == []
    assert all(c.execution_count for c in code)
    for cell in code:
        if any(t.startswith("claim:") for t in tags(cell)):
            footers = [o for o in cell.outputs if role(o) == "timing"]
            assert len(footers) == 1 and "run" in footers[0]["data"]["text/plain"]
    for cell in (c for c in code if "check" in tags(c)):
        text = stream_text(cell)
        assert NOT_YET in text and PASS not in text, f"{cell.id}: the stub must not pass"
        assert len(text.split(NOT_YET, 1)[1].strip()) > 20, "a hint follows NOT YET"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_runs_through_tandem_run(path, tmp_path):
    out = tmp_path / path.name
    ran = run_with_tandem(path, out)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "⏱ compile" in ran.stdout and "In [" in ran.stdout
    nb = nbformat.read(out, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count == n for n, c in enumerate(code, 1))
    assert errors_where_not_expected(code) == []
    checks = [stream_text(c) for c in code if "check" in tags(c)]
    assert checks and all(NOT_YET in text for text in checks)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_solutions_pass_their_checks(path, tmp_path):
    out = tmp_path / path.name
    ran = run_with_tandem(SOLUTIONS / path.name, out)
    assert ran.returncode == 0, ran.stderr[-3000:]
    nb = nbformat.read(out, as_version=4)
    checks = [stream_text(c) for c in nb.cells if "check" in tags(c)]
    assert checks and all(PASS in text and NOT_YET not in text for text in checks), checks


def test_tandem_run_stops_at_the_first_failing_cell(tmp_path):
    kernelspec = {"name": "tandem", "display_name": "Rust (tandem)"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    nb.cells = [nbformat.v4.new_code_cell('println!("first");'),
                nbformat.v4.new_code_cell("tokio::spawn(async { 2 }).await.unwrap()"),
                nbformat.v4.new_code_cell('let x: u32 = "not a number";'),
                nbformat.v4.new_code_cell('println!("never");')]
    source, out = tmp_path / "broken.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    trace = tmp_path / "trace.json"
    ran = run_with_tandem(source, out, "--trace", str(trace))
    assert ran.returncode == 1
    # (Each cell's source is echoed as `  │ code`; its output is a line of its own.)
    assert "\nfirst\n" in ran.stdout and "never" not in ran.stdout.replace('"never"', "")
    assert "mismatched types" in ran.stderr and "code cell 3" in ran.stderr
    executed = json.loads(out.read_text())
    outputs = [c["outputs"] for c in executed["cells"]]
    assert outputs[0][0]["text"] == "first\n"
    assert outputs[2][-1]["output_type"] == "error"
    assert outputs[3] == [] and executed["cells"][3]["execution_count"] is None
    # What ran is in the trace too, though a cell failed: the spawning cell, its task.
    events = json.loads(trace.read_text())["traceEvents"]
    processes = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert processes == ["cell [2]"], processes
    lives = [e for e in events if e["ph"] == "b" and e["cat"] == "task" and e["id"] != 0]
    assert len(lives) == 1 and "spawned_at" in lives[0]["args"], lives
    assert any(e["ph"] == "X" and e["name"] == lives[0]["name"] for e in events)


@pytest.mark.parametrize("wait", ["blocking_task(\"long wait\", 60.0);",
                                  "std::thread::sleep(std::time::Duration::from_secs(60));"],
                         ids=["helper wait", "plain sleep"])
def test_ctrl_c_stops_tandem_run_and_keeps_what_ran(tmp_path, wait):
    kernelspec = {"name": "tandem", "display_name": "Rust (tandem)"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    nb.cells = [nbformat.v4.new_code_cell('println!("first");'),
                nbformat.v4.new_code_cell('println!("waiting");\n' + wait),
                nbformat.v4.new_code_cell('println!("never");')]
    source, out = tmp_path / "long.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    # A session of its own, so Ctrl-C can be played as a terminal does it: SIGINT to the
    # whole process group (tandem and the engine's process that runs the cell).
    run = subprocess.Popen([str(TANDEM), "run", str(source), "--output", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        # The cell has started: whether Ctrl-C finds it before or inside its wait, it stops.
        for line in run.stdout:
            if line.strip() == "waiting":
                break
        pressed = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        stdout, stderr = run.communicate(timeout=30)
        stopped = time.monotonic() - pressed
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 130, stderr
    assert stopped < 10, stopped
    assert "interrupted after 2 code cells" in stderr
    assert "never" not in stdout.replace('"never"', "")
    executed = json.loads(out.read_text())
    outputs = [c["outputs"] for c in executed["cells"]]
    assert outputs[0][0]["text"] == "first\n"
    assert outputs[1][-1]["output_type"] == "error"
    assert outputs[1][-1]["ename"] == "Interrupted"
    assert outputs[2] == [] and executed["cells"][2]["execution_count"] is None


def test_a_second_ctrl_c_quits_tandem_run_leaving_nothing_behind(tmp_path):
    kernelspec = {"name": "tandem", "display_name": "Rust (tandem)"}
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec})
    nb.cells = [nbformat.v4.new_code_cell(
        'let sleeper = std::process::Command::new("sleep").arg("600").spawn().unwrap();\n'
        'println!("waiting {}", sleeper.id());\n'
        "loop { std::hint::spin_loop(); }")]
    source = tmp_path / "spin.ipynb"
    nbformat.write(nb, source)
    # Its scratch folder in a cache of its own, to see that it is removed.
    cache = pathlib.Path.home() / ".cache" / f"tandem-test-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), TANDEM_TEMPLATE_DIR=template_dir())
    run = subprocess.Popen([str(TANDEM), "run", str(source)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        for line in run.stdout:
            if line.startswith("waiting "):
                sleeper = int(line.split()[1])
                break
        assert list((cache / "tandem" / "kernels").iterdir()), "its scratch folder"
        # Twice, as an impatient learner does: the second, within the first's 0.2 s of
        # grace, quits at once. (Sent once the first was seen: two signals sent together
        # may arrive as one.)
        os.killpg(run.pid, signal.SIGINT)
        for line in run.stderr:
            if "interrupting the cell" in line:
                break
        os.killpg(run.pid, signal.SIGINT)
        _, stderr = run.communicate(timeout=30)
        assert run.returncode == 130, stderr
        assert "tandem: stopped" in stderr
        deadline = time.monotonic() + 10
        while not ended(sleeper):
            assert time.monotonic() < deadline, "the sleep the cell started is still running"
            time.sleep(0.05)
        assert list((cache / "tandem" / "kernels").iterdir()) == [], "no scratch folder left"
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
        shutil.rmtree(cache, ignore_errors=True)


# -- what the lesson claims, from the figures measured while it ran -----------------------

def test_synchronous_waits_add_up():
    nb = executed_by_nbclient("02-synchronous.ipynb")
    _, figures = claim(nb, "sync-sum")
    assert figures["total_seconds"] >= 0.95 * figures["sum_seconds"]
    assert not figures["overlapped"]
    cell, _ = claim(nb, "sync-idle")
    busy = float(re.search(r"busy (\d+)%", stream_text(cell)).group(1))
    assert busy < 30, "a blocked thread is idle, not computing"


def test_async_waits_overlap_on_one_thread():
    assert_async_waits_overlap_on_one_thread(executed_by_nbclient("03-asynchronous.ipynb"))


def assert_async_waits_overlap_on_one_thread(nb):
    """Lesson 3's claims, from the figures of one run of it (tests/test_classroom.py runs
    it under a hub)."""
    _, sequential = claim(nb, "async-sequential")
    assert sequential["total_seconds"] >= 0.95 * sequential["sum_seconds"]
    for name in ("async-max", "async-gather", "async-spawn", "async-one-thread"):
        _, figures = claim(nb, name)
        longest = max(t["end"] - t["start"] for t in figures["tasks"])
        assert figures["overlapped"]
        assert figures["total_seconds"] < 0.7 * figures["sum_seconds"]
        assert figures["total_seconds"] < 1.2 * longest, "the total is about the longest wait"
    _, one_thread = claim(nb, "async-one-thread")
    assert one_thread["threads"] == 1
    # join! makes no tasks: its futures are branches of the cell's future; spawn makes two.
    assert [len(t["branches"]) for t in event_loop_tasks(claim(nb, "async-max")[0])] == [2]
    spawned = event_loop_tasks(claim(nb, "async-spawn")[0])[1:]
    assert [t["name"].split(" (cell:")[0] for t in spawned] == \
        ['task async_task("A", 1.0)', 'task async_task("B", 0.5)'], spawned


def test_blocking_inside_async_takes_the_sum_and_both_fixes_work():
    nb = executed_by_nbclient("04-blocking-in-async.ipynb")
    for name in ("pitfall-blocked", "pitfall-timer"):
        _, figures = claim(nb, name)
        assert figures["total_seconds"] >= 0.95 * figures["sum_seconds"], name
    for name in ("pitfall-fix-async", "pitfall-fix-spawn-blocking"):
        _, figures = claim(nb, name)
        assert figures["overlapped"] and figures["total_seconds"] < 0.85 * figures["sum_seconds"]


def test_threads_speed_up_cpu_work_and_async_does_not():
    nb = executed_by_nbclient("05-cpu-vs-io.ipynb")
    _, in_async = claim(nb, "cpu-async")
    assert in_async["total_seconds"] >= 0.9 * in_async["sum_seconds"]
    assert in_async["threads"] == 1
    _, on_threads = claim(nb, "cpu-threads")
    assert on_threads["threads"] == 2
    if len(os.sched_getaffinity(0)) >= 2:
        assert on_threads["total_seconds"] < 0.75 * on_threads["sum_seconds"]
    # Spawned tasks on the cells' multi-thread runtime run on two workers at once.
    cell, spawned = claim(nb, "cpu-spawn")
    assert spawned["threads"] == 2, spawned
    workers = {thread for task in event_loop_tasks(cell)[1:] for thread in task["threads"]}
    assert len(workers) == 2, workers
    if len(os.sched_getaffinity(0)) >= 2:
        assert spawned["total_seconds"] < 0.75 * spawned["sum_seconds"]
    _, io = claim(nb, "io-async")
    assert io["total_seconds"] < 0.7 * io["sum_seconds"]


def test_real_io_is_faster_async_where_it_waits():
    nb = executed_by_nbclient("06-real-io.ipynb")
    waits = {}
    for blocking, concurrent in [("http-blocking", "http-async"),
                                 ("scrape-blocking", "scrape-async"),
                                 ("db-blocking", "db-async")]:
        _, slow = claim(nb, blocking)
        _, fast = claim(nb, concurrent)
        assert not slow["overlapped"] and fast["overlapped"]
        assert fast["total_seconds"] < 0.6 * slow["total_seconds"], concurrent
        waits[blocking] = slow["total_seconds"]
    _, files = claim(nb, "files-blocking")
    assert files["total_seconds"] < 0.25 * waits["http-blocking"], "local files answer quickly"


def usage(text):
    figures = re.search(r"([\d.]+) s · CPU [\d.]+ s · (\d+) extra threads? · "
                        r"\+([\d.]+) MiB in use · \+(\d+) MiB reserved", text)
    took, threads, _, reserved = figures.groups()
    return float(took), int(threads), int(reserved)


def test_many_connections_favour_async():
    nb = executed_by_nbclient("07-many-connections.ipynb")
    threads_took, threads, threads_reserved = usage(stream_text(claim(nb, "many-threads")[0]))
    async_took, async_threads, async_reserved = usage(stream_text(claim(nb, "many-async")[0]))
    assert threads >= 150 and async_threads <= 3
    assert async_reserved < 0.5 * threads_reserved
    assert async_took < 2.0 * threads_took, "async keeps up with a thread per request"
    server = stream_text(claim(nb, "many-server")[0])
    assert int(re.search(r"held (\d+) connections", server).group(1)) >= 150
    table = claim(nb, "many-table")[0]
    assert any("text/markdown" in o.get("data", {}) for o in table.outputs)


def test_comparison_table_is_built_from_this_run():
    nb = executed_by_nbclient("08-choosing.ipynb")
    io = stream_text(claim(nb, "choose-io")[0])
    blocking, concurrent = map(float, re.search(r"blocking ([\d.]+) s · async ([\d.]+) s", io).groups())
    assert concurrent < 0.6 * blocking
    table = claim(nb, "choose-table")[0]
    markdown = next(o["data"]["text/markdown"] for o in table.outputs
                    if "text/markdown" in o.get("data", {}))
    assert f"took {blocking:.2f} s" in markdown and f"took {concurrent:.2f} s" in markdown
    for feature in ("Execution model", "Blocking behaviour", "Complexity", "Best for",
                    "Core tools"):
        assert feature in markdown


def printed(nb, name, pattern):
    """The figures a claim cell printed, matched by `pattern`."""
    text = stream_text(claim(nb, name)[0])
    found = re.search(pattern, text)
    assert found, (name, text)
    return [float(group) for group in found.groups()]


def test_await_polls_only_when_woken_and_spawn_asks_send_and_static():
    nb = executed_by_nbclient("09-inside-await.ipynb")
    [polls] = printed(nb, "polls-sleep", r"a 0.3 s sleep: (\d+) polls")
    assert 2 <= polls <= 3, "a sleep is polled when it starts and when it is woken"
    [polls] = printed(nb, "polls-yield", r"three yields: (\d+) polls")
    assert 4 <= polls <= 5, "one poll per Pending, and the last"
    _, joined = printed(nb, "polls-join", r"ticker was polled (\d+) times, the sleeper (\d+)")
    _, spawned = printed(nb, "polls-spawn", r"ticker was polled (\d+) times, the sleeper (\d+)")
    assert joined >= 2 * spawned and spawned <= 3, (joined, spawned)
    # join! keeps both in the cell's one task; spawn makes two tasks.
    [cell_task] = event_loop_tasks(claim(nb, "polls-join")[0])
    assert len(cell_task["branches"]) == 2
    assert len(event_loop_tasks(claim(nb, "polls-spawn")[0])[1:]) == 2
    # The three compile errors are rustc's own, read against the cell's lines.
    failed = [c for c in nb.cells if "raises-exception" in tags(c)]
    said = ["\n".join(o["traceback"]) for c in failed for o in c["outputs"]
            if o["output_type"] == "error"]
    assert len(said) == 3
    for text, expected in zip(said, ["E0373", "`Rc<Vec<&str>>`", "MutexGuard"]):
        assert expected in text and "cell:" in text and "src/lib.rs" not in text, text


def test_cancelling_drops_the_future_and_a_semaphore_bounds_the_crawl():
    nb = executed_by_nbclient("10-cancel-and-limit.ipynb")
    [gave_up] = printed(nb, "cancel-timeout", r"no report after ([\d.]+) s")
    [failed_fast] = printed(nb, "errors-try-join", r"gave up after ([\d.]+) s")
    [waited_all] = printed(nb, "errors-join", r"after ([\d.]+) s: the slow one ok: true, "
                                              r"the other ok: false")
    assert gave_up < 0.5 * waited_all and failed_fast < 0.5 * waited_all, \
        "timeout and try_join! drop the one-second request; join! waits for it"
    # The loser of select! is dropped when the winner answers, and is drawn cancelled.
    race = claim(nb, "cancel-select")[0]
    text = stream_text(race)
    assert text.index("the slow request dropped") < text.index("the fast server answered first")
    [cell_task] = event_loop_tasks(race)
    cancelled = [b["name"] for b in cell_task["branches"] if b["cancelled_at"] is not None]
    assert len(cancelled) == 1 and "SaysWhenDropped" in cancelled[0], cell_task["branches"]
    # abort: the ticker stops between ticks, and its handle says it was cancelled.
    ticks = stream_text(claim(nb, "cancel-abort")[0])
    assert "tick 1\n" in ticks and "tick 4" not in ticks and "cancelled: true" in ticks
    aborted = event_loop_tasks(claim(nb, "cancel-abort")[0])[1]
    assert aborted["cancelled_at"] is not None
    # Dropping a JoinHandle cancels nothing: the task ran on to its end.
    assert "ran on, to its end" in stream_text(claim(nb, "cancel-detached")[0])
    [unbounded] = printed(nb, "limit-none", r"at most (\d+) requests at once")
    [bounded] = printed(nb, "limit-semaphore", r"at most (\d+) requests at once")
    assert unbounded == 12 and bounded == 3
    _, figures = claim(nb, "limit-semaphore")
    longest = max(t["end"] - t["start"] for t in figures["tasks"])
    assert figures["total_seconds"] > 3.5 * longest, "four rounds of three"
    panicked = stream_text(claim(nb, "errors-panic")[0])
    assert "the task panicked: true" in panicked and "the cell goes on" in panicked
