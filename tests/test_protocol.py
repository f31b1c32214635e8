"""The Jupyter protocol as tandem implements it, checked through jupyter_client against
the installed kernelspec: counting, silence, stop_on_error, user_expressions, stdin,
live streaming, rich output, introspection, comms and metadata."""
import json
import os
import time

import pytest
from conftest import is_footer, own_kernel, run_cell


def test_execution_count_grows_only_with_store_history(kc):
    first = run_cell(kc, "1")
    count = first.reply["content"]["execution_count"]
    hidden = run_cell(kc, "2", store_history=False)
    assert hidden.reply["content"]["execution_count"] == count
    assert hidden.of_type("execute_input")[0]["content"]["execution_count"] == count
    after = run_cell(kc, "3")
    assert after.reply["content"]["execution_count"] == count + 1
    assert after.of_type("execute_result")[0]["content"]["execution_count"] == count + 1


def test_silent_execution_publishes_nothing_but_status(kc):
    cell = run_cell(kc, 'println!("should not be seen"); 5', silent=True)
    assert cell.status == "ok"
    kinds = [m["msg_type"] for _, m in cell.outputs]
    assert kinds == ["status", "status"], kinds


def test_stop_on_error_aborts_queued_executes(kc):
    failing = kc.execute("let broken: u8 = 300;")  # rustc rejects the literal
    queued = [kc.execute("1 + 1"), kc.execute("2 + 2")]
    replies = {}
    while len(replies) < 3:
        reply = kc.get_shell_msg(timeout=120)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]
    assert replies[failing]["status"] == "error"
    assert [replies[q]["status"] for q in queued] == ["aborted", "aborted"]
    # The abort ends with the queue: the next cell runs.
    assert run_cell(kc, "3 + 3").value() == "6"


def test_a_cell_sent_as_soon_as_the_error_reply_arrives_runs(kc):
    # Only what was waiting when the cell failed is aborted; a client that sends its next
    # cell on seeing the error reply (before the kernel is idle) gets it run.
    for _ in range(5):
        failing = kc.execute("let broken: u8 = 300;")
        reply = kc.get_shell_msg(timeout=120)
        assert reply["parent_header"]["msg_id"] == failing
        assert reply["content"]["status"] == "error"
        next_one = kc.execute("5 + 5")
        reply = kc.get_shell_msg(timeout=120)
        assert reply["parent_header"]["msg_id"] == next_one
        assert reply["content"]["status"] == "ok"


def test_stop_on_error_false_keeps_going(kc):
    failing = kc.execute("let broken: u8 = 300;", stop_on_error=False)
    next_one = kc.execute("4 + 4")
    replies = {}
    while len(replies) < 2:
        reply = kc.get_shell_msg(timeout=120)
        replies[reply["parent_header"]["msg_id"]] = reply["content"]
    assert replies[failing]["status"] == "error"
    assert replies[next_one]["status"] == "ok"


def test_user_expressions_are_evaluated(kc):
    cell = run_cell(
        kc,
        "let base = 20;",
        user_expressions={"double": "base * 2", "bad": "no_such_name"},
    )
    expressions = cell.reply["content"]["user_expressions"]
    assert expressions["double"]["status"] == "ok"
    assert expressions["double"]["data"]["text/plain"] == "40"
    assert expressions["bad"]["status"] == "error"


def test_input_request_when_stdin_allowed(kc):
    code = (
        'println!("EVCXR_INPUT_REQUEST:Your name? ");\n'
        "let mut line = String::new();\n"
        "std::io::stdin().read_line(&mut line).unwrap();\n"
        'println!("hello {}", line.trim());'
    )
    msg_id = kc.execute(code, allow_stdin=True)
    request = kc.get_stdin_msg(timeout=120)
    assert request["msg_type"] == "input_request"
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"] == {"prompt": "Your name? ", "password": False}
    kc.input("Ferris")
    reply = kc.get_shell_msg(timeout=60)
    assert reply["content"]["status"] == "ok"
    text = ""
    while True:
        msg = kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            text += msg["content"]["text"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert "hello Ferris" in text


def test_the_input_helper_asks_the_notebook_for_a_line(kc):
    msg_id = kc.execute('let name = display::input("Your name? ");\n'
                        'println!("hello {name}");', allow_stdin=True)
    request = kc.get_stdin_msg(timeout=120)
    assert request["parent_header"]["msg_id"] == msg_id
    assert request["content"] == {"prompt": "Your name? ", "password": False}
    kc.input("Ferris")
    assert kc.get_shell_msg(timeout=60)["content"]["status"] == "ok"
    text = ""
    while True:
        msg = kc.get_iopub_msg(timeout=10)
        if msg["parent_header"].get("msg_id") == msg_id:
            if msg["msg_type"] == "stream":
                text += msg["content"]["text"]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
    assert text == "hello Ferris\n", text


def test_input_without_stdin_gets_empty_string_and_a_note(kc):
    code = (
        'println!("EVCXR_INPUT_REQUEST:Name? ");\n'
        "let mut line = String::new();\n"
        "std::io::stdin().read_line(&mut line).unwrap();\n"
        'println!("got [{}]", line.trim());'
    )
    cell = run_cell(kc, code, allow_stdin=False)
    assert cell.status == "ok"
    assert "got []" in cell.text()
    assert "does not allow stdin" in cell.text("stderr")


def test_lines_arrive_while_the_cell_runs(kc):
    code = (
        'println!("first");\n'
        "std::thread::sleep(std::time::Duration::from_millis(1500));\n"
        'println!("second");'
    )
    cell = run_cell(kc, code)
    arrivals = {m["content"]["text"].strip(): t for t, m in cell.outputs if m["msg_type"] == "stream"}
    reply_at = cell.outputs[-1][0]
    assert set(arrivals) == {"first", "second"}
    # "first" shows up about 1.5 s before the cell ends, not with the reply.
    assert reply_at - arrivals["first"] > 1.0, (arrivals, reply_at)


def test_rich_output_mid_cell_is_display_data_when_printed(kc):
    code = (
        'println!("EVCXR_BEGIN_CONTENT text/html\\n<i>live</i>\\nEVCXR_END_CONTENT");\n'
        "std::thread::sleep(std::time::Duration::from_millis(1000));\n"
        "7"
    )
    cell = run_cell(kc, code)
    (shown_at, display), = [(t, m) for t, m in cell.outputs
                            if m["msg_type"] == "display_data" and not is_footer(m["content"])]
    assert display["content"]["data"]["text/html"] == "<i>live</i>"
    assert cell.outputs[-1][0] - shown_at > 0.7
    assert cell.value() == "7"


def test_a_display_handle_changes_its_output_in_place(kc):
    # The first show is a display with an id; later ones update that display, and a
    # second handle is a display of its own. Each arrives while the cell runs.
    code = (
        "let progress = display::Handle::new();\n"
        'progress.markdown("**0** of 2");\n'
        "std::thread::sleep(std::time::Duration::from_millis(600));\n"
        'progress.markdown("**2** of 2");\n'
        'display::Handle::new().text("other");\n'
        "progress.clear();"
    )
    cell = run_cell(kc, code)
    assert cell.status == "ok", cell.reply["content"]
    shown = [(t, m) for t, m in cell.outputs
             if m["msg_type"] in ("display_data", "update_display_data")
             and not m["content"]["metadata"].get("tandem")]  # the kernel's own: progress, footer
    kinds = [m["msg_type"] for _, m in shown]
    assert kinds == ["display_data", "update_display_data", "display_data",
                     "update_display_data"], kinds
    ids = [m["content"]["transient"]["display_id"] for _, m in shown]
    assert ids[0] == ids[1] == ids[3] != ids[2]
    assert shown[3][1]["content"]["data"] == {"text/plain": ""}, "cleared in place"
    assert shown[0][1]["content"]["data"] == {"text/markdown": "**0** of 2"}
    assert shown[1][1]["content"]["data"] == {"text/markdown": "**2** of 2"}
    assert shown[2][1]["content"]["data"] == {"text/plain": "other"}
    assert shown[1][0] - shown[0][0] > 0.4, "the first show arrived while the cell ran"


def test_final_value_with_rich_types_is_execute_result(kc):
    code = (
        "struct Bold(&'static str);\n"
        "impl Bold { fn evcxr_display(&self) {\n"
        '    println!("EVCXR_BEGIN_CONTENT text/html\\n<b>{}</b>\\nEVCXR_END_CONTENT", self.0);\n'
        "} }\n"
        'Bold("value")'
    )
    cell = run_cell(kc, code)
    assert cell.status == "ok"
    results = cell.of_type("execute_result")
    assert len(results) == 1 and not cell.displays()
    assert results[0]["content"]["data"]["text/html"] == "<b>value</b>"


def test_compile_error_points_at_the_cell_line(kc):
    cell = run_cell(kc, 'let fine = 1;\nlet wrong: i32 = "text";')
    assert cell.status == "error"
    (error,) = cell.of_type("error")
    traceback = "\n".join(error["content"]["traceback"])
    assert "cell:2:" in traceback
    assert 'let wrong: i32 = "text";' in traceback
    assert cell.reply["content"]["ename"].startswith("error[E0308]")
    assert "mismatched types" in cell.reply["content"]["evalue"]


def test_panic_is_an_error_and_the_session_goes_on(kc):
    assert run_cell(kc, "let kept = 41;").status == "ok"
    cell = run_cell(kc, 'let v: Vec<i32> = Vec::new();\nif v.is_empty() { panic!("nothing in {}", "v"); }')
    assert cell.status == "error"
    (error,) = cell.of_type("error")
    assert error["content"]["ename"] == "panic"
    assert error["content"]["evalue"] == "nothing in v"
    assert "panicked at" not in cell.text("stderr")
    assert run_cell(kc, "kept + 1").value() == "42"


def test_complete_counts_code_points(kc):
    run_cell(kc, "let ñandú_count = 3;")
    code = 'let s = "é"; ñandú_c'
    msg_id = kc.complete(code, len(code))
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    content = reply["content"]
    assert "ñandú_count" in content["matches"]
    assert content["cursor_end"] == len(code)
    assert content["cursor_start"] == len(code) - len("ñandú_c")


def test_inspect_a_session_variable(kc):
    run_cell(kc, "let inspected_value: Vec<u8> = vec![1];")
    kc.inspect("inspected_value", len("inspected_value"))
    reply = kc.get_shell_msg(timeout=60)["content"]
    assert reply["status"] == "ok" and reply["found"]
    assert "Vec<u8>" in reply["data"]["text/plain"]


def test_unknown_comm_target_is_closed(kc):
    comm_id = "c0ffee"
    kc.session.send(kc.shell_channel.socket, "comm_open",
                    {"comm_id": comm_id, "target_name": "nope", "data": {}})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["msg_type"] == "comm_close":
            assert msg["content"]["comm_id"] == comm_id
            return
    pytest.fail("no comm_close for an unknown comm target")


def test_reply_metadata_has_start_time_and_timings(kc):
    cell = run_cell(kc, "std::thread::sleep(std::time::Duration::from_millis(300));")
    metadata = cell.reply["metadata"]
    assert "started" in metadata
    timings = metadata["tandem"]
    assert timings["run_seconds"] >= 0.3
    assert timings["compile_seconds"] > 0


def test_kernel_info_has_language_and_help(kc):
    kc.kernel_info()
    reply = kc.get_shell_msg(timeout=30)["content"]
    info = reply["language_info"]
    assert info["name"] == "rust" and info["file_extension"] == ".rs"
    assert info["codemirror_mode"] == "rust" and info["pygments_lexer"] == "rust"
    assert info["mimetype"] == "text/rust"
    assert reply["implementation"] == "tandem"
    assert any("docs.rs/tokio" in link["url"] for link in reply["help_links"])


def test_every_cell_that_ran_ends_with_a_timing_footer(kc):
    cell = run_cell(kc, "std::thread::sleep(std::time::Duration::from_millis(400));\n6 * 7")
    (footer,) = cell.footers()
    assert cell.outputs[-2][1] is footer, "the footer comes last, just before idle"
    text = footer["content"]["data"]["text/plain"]
    compile_s = float(text.split("compile ")[1].split(" s")[0])
    run_s = float(text.split("run ")[1].split(" s")[0])
    timings = cell.reply["metadata"]["tandem"]
    assert abs(run_s - timings["run_seconds"]) < 0.01
    assert abs(compile_s - timings["compile_seconds"]) < 0.01
    assert run_s >= 0.4
    assert "text/html" in footer["content"]["data"]


def test_a_cell_of_items_only_replies_without_waiting_for_runtime_events(kc):
    # A `fn` or a `struct` runs no future, so no runtime events will come: the reply
    # follows the compile, rather than waiting out the wait for events that never come.
    assert run_cell(kc, "1").status == "ok"  # the engine is up
    for n in range(2):
        cell = run_cell(kc, f"fn items_only_{n}() -> u32 {{ {n} }}\nstruct ItemsOnly{n};")
        assert cell.status == "ok", cell.reply["content"]
        timings = cell.reply["metadata"]["tandem"]
        worked = timings["compile_seconds"] + timings["run_seconds"]
        replied = next(at for at, m in cell.outputs if m["msg_type"] == "status"
                       and m["content"]["execution_state"] == "idle")
        assert replied < 1.5 * worked + 0.3, (replied, timings)


def test_timing_footer_toggles(kc):
    off = run_cell(kc, ":timing off")
    assert off.status == "ok" and "timing footer off" in off.text()
    quiet = run_cell(kc, "1 + 2")
    assert quiet.value() == "3" and not quiet.footers()
    assert "run_seconds" in quiet.reply["metadata"]["tandem"], "metadata stays"
    run_cell(kc, ":timing on")
    assert run_cell(kc, "1 + 3").footers()
    mixed = run_cell(kc, ":timing off\n5 + 5")
    assert mixed.value() == "10" and not mixed.footers()
    assert run_cell(kc, ":timing").text() == "timing footer on\n"
    usage = run_cell(kc, ":timing loudly")
    assert usage.status == "error"
    assert "on` or `off" in usage.of_type("error")[0]["content"]["evalue"]
    assert not run_cell(kc, "let broken: u8 = 300;").footers(), "no footer on errors"


def test_idle_work_waits_for_a_quiet_shell(tmp_path):
    """A kernel whose first cell came before its engine was up still owes rust-analyzer's
    first query (1.2-3.7 s, so that the first Tab is quick). It asks it only after the
    shell has been quiet for a second: not between cells sent one right after another
    (each would wait for it), but once the client pauses."""
    log_path = tmp_path / "kernel.log"
    warmed = "rust-analyzer warmed up while idle"
    with open(log_path, "w") as log, \
            own_kernel(stderr=log, env=dict(os.environ, TANDEM_LOG="tandem=debug")) as (_, kc):
        assert run_cell(kc, "1").value() == "1"  # sent at once: it waited for the engine
        back_to_back = [run_cell(kc, f"{n} + 1") for n in range(4)]
        assert [cell.value() for cell in back_to_back] == ["1", "2", "3", "4"]
        assert warmed not in log_path.read_text(), "the warm-up came between the cells"
        deadline = time.monotonic() + 60
        while warmed not in log_path.read_text():
            assert time.monotonic() < deadline, "no warm-up after a pause"
            time.sleep(0.2)
        # The warm-up's throwaway query left nothing behind in the session.
        assert run_cell(kc, "tandem_warm_up").status == "error"
        assert run_cell(kc, "40 + 2").value() == "42"


# Two jobs of CPU work, ~0.3 s each, in plain Rust: no helper records anything.
CPU_JOB = "async { let mut n = 0u64; for i in 0..40_000_000u64 { n = n.wrapping_add(i ^ (n >> 3)); } n }"


def event_loop_pictures(cell):
    """The cell's event-loop pictures in order: those drawn while it ran, then the final."""
    return [m for _, m in cell.outputs
            if m["msg_type"] in ("display_data", "update_display_data")
            and m["content"]["metadata"].get("tandem", {}).get("role") == "event-loop"]


def event_loop(cell):
    """The figures of the cell's final event-loop picture (None when it has none)."""
    pictures = event_loop_pictures(cell)
    if not pictures:
        return None
    finals = [m["content"]["metadata"]["tandem"]["final"] for m in pictures]
    assert finals == [False] * (len(pictures) - 1) + [True], finals
    if len(pictures) > 1:
        # One display, drawn anew while the cell ran and replaced in place.
        kinds = [m["msg_type"] for m in pictures]
        assert kinds == ["display_data"] + ["update_display_data"] * (len(kinds) - 1), kinds
        ids = {m["content"]["transient"]["display_id"] for m in pictures}
        assert len(ids) == 1, ids
    return pictures[-1]["content"]["metadata"]["tandem"]


def test_the_event_loop_shows_spawned_tasks_of_plain_rust_on_their_threads(kc):
    # Spawned, the two jobs are tasks the multi-thread runtime runs on two workers at once;
    # in one task, one after the other, they run on one thread. No helper is involved.
    apart = run_cell(kc, f"let a = tokio::spawn({CPU_JOB});\n"
                         f"let b = tokio::spawn({CPU_JOB});\n"
                         "(a.await.unwrap() ^ b.await.unwrap()) % 2")
    assert apart.status == "ok", apart.reply["content"]
    figures = event_loop(apart)
    assert figures is not None, "the cell's tasks were drawn"
    spawned = [task for task in figures["tasks"] if task["id"] != 0]
    assert len(spawned) == 2 and all(task["polls"] >= 1 for task in spawned), spawned
    assert figures["task_threads"] == 2, figures
    first, second = spawned
    assert first["first_poll"] < second["last_poll_end"] and \
        second["first_poll"] < first["last_poll_end"], "they ran at the same time"
    # Each is named by what it spawned and its line in the cell; on workers of their own,
    # neither kept the other waiting.
    assert [task["cell_line"] for task in spawned] == [1, 2], spawned
    assert all(task["name"].startswith("task async { let mut n = 0u64;") and
               task["name"].endswith("(cell:%d)" % task["cell_line"]) for task in spawned), spawned
    assert figures["held_the_loop"] == [], figures["held_the_loop"]

    together = run_cell(kc, f"tokio::spawn(async {{ {CPU_JOB}.await ^ {CPU_JOB}.await }})"
                            ".await.unwrap() % 2")
    assert together.status == "ok", together.reply["content"]
    figures = event_loop(together)
    assert figures["task_threads"] == 1, figures
    # spawn_blocking closures, which tokio's hooks do not see, are tasks of the picture
    # too: one poll each, for their whole run, at the same time on two threads.
    blocking = run_cell(kc, "fn nap() { std::thread::sleep(std::time::Duration::from_millis(300)); }\n"
                            "let a = tokio::task::spawn_blocking(nap);\n"
                            "let b = spawn_blocking(nap);\n"
                            "a.await.unwrap(); b.await.unwrap();")
    assert blocking.status == "ok", blocking.reply["content"]
    jobs = [task for task in event_loop(blocking)["tasks"]
            if task["name"].startswith("spawn_blocking (")]
    assert len(jobs) == 2 and all(job["polls"] == 1 for job in jobs), jobs
    assert all(job["busy_seconds"] >= 0.3 * 0.9 for job in jobs), jobs
    assert jobs[0]["threads"] != jobs[1]["threads"], jobs
    assert jobs[0]["first_poll"] < jobs[1]["last_poll_end"] and \
        jobs[1]["first_poll"] < jobs[0]["last_poll_end"], "they ran at the same time"
    # A cell that spawns nothing draws no event-loop picture.
    assert event_loop(run_cell(kc, "1 + 1")) is None


def test_the_helpers_own_runtimes_are_drawn_too(kc):
    # run_on_threads builds a runtime of its own: its two spawned CPU jobs run on two of
    # its workers at once; run_on_one_thread's run on its one thread, one after the other.
    jobs = f"async {{ let a = spawn({CPU_JOB}); let b = spawn({CPU_JOB}); " \
           "a.await.unwrap() ^ b.await.unwrap() }"
    apart = run_cell(kc, f"run_on_threads(2, {jobs}) % 2")
    assert apart.status == "ok", apart.reply["content"]
    figures = event_loop(apart)
    spawned = [task for task in figures["tasks"] if task["id"] != 0]
    assert len(spawned) == 2, figures["tasks"]
    assert figures["task_threads"] == 2 and all(
        thread.startswith("tokio worker #") for task in spawned for thread in task["threads"]), \
        spawned
    together = run_cell(kc, f"run_on_one_thread({jobs}) % 2")
    assert together.status == "ok", together.reply["content"]
    figures = event_loop(together)
    threads = {thread for task in figures["tasks"] if task["id"] != 0 for thread in task["threads"]}
    assert len(threads) == 1 and threads.pop().startswith("event-loop"), figures["tasks"]


def test_join_branches_of_plain_rust_interleave_on_one_thread(kc):
    # The tutorial's example typed in plain Rust: its own async fn, two calls under
    # tokio::join!. They are futures inside one task (the cell's), not tasks: each is a
    # row named by its source text, and they overlap, on the same thread.
    defined = run_cell(kc, "async fn fetch(name: &str, millis: u64) -> String {\n"
                           "    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;\n"
                           "    name.to_uppercase()\n"
                           "}")
    assert defined.status == "ok", defined.reply["content"]
    cell = run_cell(kc, 'let (a, b) = tokio::join!(fetch("a", 600), fetch("b", 300));\n'
                        'println!("{a}{b}");')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.text() == "AB\n"
    figures = event_loop(cell)
    assert figures is not None, "the join!'s branches were drawn"
    cell_future, = [task for task in figures["tasks"] if task["id"] == 0]
    branches = {branch["name"]: branch for branch in cell_future["branches"]}
    assert set(branches) == {'fetch("a", 600)', 'fetch("b", 300)'}, branches
    a, b = branches['fetch("a", 600)'], branches['fetch("b", 300)']
    assert a["first_poll"] < b["last_poll_end"] and b["first_poll"] < a["last_poll_end"]
    assert a["threads"] == b["threads"] and len(a["threads"]) == 1, (a, b)
    assert a["polls"] >= 2 and b["polls"] >= 2, "each gave the thread back at its .await"

    # futures' join_all and join! are drawn the same way: join_all's futures by position.
    gathered = run_cell(kc, 'let all = futures::future::join_all(vec![fetch("a", 300), '
                            'fetch("b", 200), fetch("c", 100)]).await;\n'
                            'let pair: (String, String) = '
                            'futures::join!(fetch("x", 200), fetch("y", 100));\n'
                            'println!("{all:?} {pair:?}");')
    assert gathered.status == "ok", gathered.reply["content"]
    assert gathered.text() == '["A", "B", "C"] ("X", "Y")\n'
    cell_future, = [task for task in event_loop(gathered)["tasks"] if task["id"] == 0]
    names = [branch["name"] for branch in cell_future["branches"]]
    assert names == ["join_all[0]", "join_all[1]", "join_all[2]",
                     'fetch("x", 200)', 'fetch("y", 100)'], names
    first, *rest = cell_future["branches"][:3]
    assert all(other["first_poll"] < first["last_poll_end"] for other in rest), "they overlap"


def test_a_helpers_async_wait_is_polled_when_it_starts_and_when_it_ends(kc):
    # Waiting costs no polls: the helpers wait as tokio::time::sleep does (an interrupt
    # wakes them, they do not look for one every 10 ms).
    cell = run_cell(kc, 'tokio::join!(async_task("long", 0.5), async_task("short", 0.1));')
    assert cell.status == "ok", cell.reply["content"]
    [cell_task] = event_loop(cell)["tasks"]
    polls = {branch["name"]: branch["polls"] for branch in cell_task["branches"]}
    assert polls['async_task("short", 0.1)'] <= 3, polls
    assert polls['async_task("long", 0.5)'] <= 4, polls


def test_a_blocking_sleep_inside_async_code_is_caught_and_an_async_one_is_not(kc):
    # Hand-typed, no helpers: a std::thread::sleep inside an async fn holds the thread
    # that the other branch of the join! was ready to run on.
    cell = run_cell(kc, "async fn pause(name: &str, millis: u64) -> &str {\n"
                        "    std::thread::sleep(std::time::Duration::from_millis(millis));\n"
                        "    name\n"
                        "}\n"
                        "async fn nap(name: &str, millis: u64) -> &str {\n"
                        "    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;\n"
                        "    name\n"
                        "}\n"
                        'tokio::join!(pause("blocking", 400), nap("polite", 100));')
    assert cell.status == "ok", cell.reply["content"]
    figures = event_loop(cell)
    held, = figures["held_the_loop"]
    # Named by their source text and the cell line of their join!.
    assert held["name"] == 'pause("blocking", 400) (cell:9)', held
    assert held["waiting"] == ['nap("polite", 100) (cell:9)'], held
    assert held["seconds"] >= 0.4 * 0.9, held
    said = event_loop_pictures(cell)[-1]["content"]["data"]["text/plain"]
    assert 'pause("blocking", 400) (cell:9) held the event loop for' in said and \
        "spawn_blocking" in said, said

    polite = run_cell(kc, 'tokio::join!(nap("a", 400), nap("b", 100));')
    assert polite.status == "ok", polite.reply["content"]
    assert event_loop(polite)["held_the_loop"] == []


def test_aborted_tasks_timers_gather_and_a_task_that_blocks_its_thread(kc):
    # Plain Rust: a task aborted before it finished is drawn cancelled, one that finished
    # is not; the sleep and timeout each one waited on are drawn with their durations.
    cell = run_cell(kc, "async fn doze(millis: u64) -> u64 {\n"
                        "    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;\n"
                        "    millis\n"
                        "}\n"
                        "let long = tokio::spawn(doze(5_000));\n"
                        "let short = tokio::spawn(doze(100));\n"
                        "short.await.unwrap();\n"
                        "long.abort();\n"
                        "let late = tokio::time::timeout(std::time::Duration::from_millis(50), doze(1_000)).await;\n"
                        "let both = gather(vec![doze(30), doze(20)]).await;\n"
                        'println!("{} {both:?} {}", late.is_err(), long.await.unwrap_err().is_cancelled());')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.text() == "true [30, 20] true\n"
    tasks = {task["name"]: task for task in event_loop(cell)["tasks"]}
    long, short = tasks["task doze(5_000) (cell:5)"], tasks["task doze(100) (cell:6)"]
    assert short["cancelled_at"] is None and long["cancelled_at"] is not None, tasks
    assert long["cancelled_at"] >= short["last_poll_end"], (long, short)
    assert [(t["kind"], t["seconds"]) for t in long["timers"]] == [("sleep", 5.0)], long
    assert [(t["kind"], t["seconds"]) for t in short["timers"]] == [("sleep", 0.1)], short
    cell_future = tasks["the cell's future"]
    waits = [(t["kind"], t["seconds"]) for t in cell_future["timers"]]
    assert waits[:2] == [("timeout", 0.05), ("sleep", 1.0)], cell_future["timers"]
    # The helpers' gather draws each future as a branch, like join_all.
    branches = [(b["name"], b["cell_line"]) for b in cell_future["branches"]]
    assert branches == [("gather[0]", 10), ("gather[1]", 10)], branches
    assert [[t["seconds"] for t in b["timers"]] for b in cell_future["branches"]] == [[0.03], [0.02]]

    # tokio's task::Builder needs its tracing feature; the preloaded one names the task.
    named = run_cell(kc, 'let orders = tokio::task::Builder::new().name("orders").spawn(doze(30))?;\n'
                         'let report = tokio::task::Builder::new().name("report")'
                         '.spawn_blocking(|| 6 * 7)?;\n'
                         "orders.await? + report.await?")
    assert named.status == "ok" and named.value() == "72", named.reply["content"]
    names = [task["name"] for task in event_loop(named)["tasks"]]
    assert 'task "orders" (cell:1)' in names and 'spawn_blocking "report" (cell:2)' in names, names

    # On a runtime with one thread, a task that blocks it keeps the ready one waiting:
    # flagged with both names and the blocking task's cell line.
    stuck = run_cell(kc, "run_on_one_thread(async {\n"
                         "    let stuck = tokio::spawn(async { std::thread::sleep(std::time::Duration::from_millis(300)) });\n"
                         "    let waiting = tokio::spawn(doze(50));\n"
                         "    stuck.await.unwrap();\n"
                         "    waiting.await.unwrap()\n"
                         "})")
    assert stuck.status == "ok", stuck.reply["content"]
    held, = event_loop(stuck)["held_the_loop"]
    assert held["kind"] == "task" and held["name"].startswith("task async { std::thread::sleep"), held
    assert held["name"].endswith("(cell:2)") and held["waiting"] == ["task doze(50) (cell:3)"], held
    assert held["seconds"] >= 0.3 * 0.9, held
    said = event_loop_pictures(stuck)[-1]["content"]["data"]["text/plain"]
    assert "(cell:2) held the event loop for" in said, said


def test_a_select_race_draws_both_branches_and_its_loser_cancelled(kc):
    # Plain Rust: the loser of a tokio::select! is dropped before it finishes.
    cell = run_cell(kc, "async fn wait(name: &str, millis: u64) -> &str {\n"
                        "    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;\n"
                        "    name\n"
                        "}\n"
                        "let winner: &str = tokio::select! {\n"
                        '    a = wait("slow", 600) => a,\n'
                        '    b = wait("quick", 100) => { b }\n'
                        "};\n"
                        'println!("{winner}");')
    assert cell.status == "ok", cell.reply["content"]
    assert cell.text() == "quick\n"
    cell_future, = [task for task in event_loop(cell)["tasks"] if task["id"] == 0]
    branches = {branch["name"]: branch for branch in cell_future["branches"]}
    assert set(branches) == {'wait("slow", 600)', 'wait("quick", 100)'}, branches
    assert branches['wait("quick", 100)']["cancelled_at"] is None
    cancelled = branches['wait("slow", 600)']["cancelled_at"]
    assert cancelled is not None and cancelled >= branches['wait("quick", 100)']["last_poll_end"]
    assert cancelled < 0.6, "dropped before its 0.6 s were up"
    # A future borrowed for each turn of a loop lives on: never drawn cancelled, while each
    # turn's losing sleep is.
    looped = run_cell(kc, "let ticks = {\n"
                          "    let deadline = tokio::time::sleep(std::time::Duration::from_millis(300));\n"
                          "    tokio::pin!(deadline);\n"
                          "    let mut ticks = 0u32;\n"
                          "    loop {\n"
                          "        tokio::select! {\n"
                          "            _ = &mut deadline => break,\n"
                          "            _ = tokio::time::sleep(std::time::Duration::from_millis(70)) => ticks += 1,\n"
                          "        }\n"
                          "    }\n"
                          "    ticks\n"
                          "};\n"
                          "ticks")
    assert looped.status == "ok", looped.reply["content"]
    rows = [branch for task in event_loop(looped)["tasks"] for branch in task["branches"]]
    borrowed = [row for row in rows if row["name"] == "&mut deadline"]
    sleeps = [row for row in rows if row["name"].startswith("tokio::time::sleep")]
    assert borrowed and all(row["cancelled_at"] is None for row in borrowed), borrowed
    # Each turn the sleep won is finished; the last turn's, if it was polled, lost.
    won = int(looped.value())
    assert won >= 2 and len(sleeps) in (won, won + 1), (won, sleeps)
    cancelled = [row["cancelled_at"] is not None for row in sleeps]
    assert cancelled == [False] * won + [True] * (len(sleeps) - won), sleeps

    # Without the type, evcxr cannot keep the variable (its analyser sees `!`): said so.
    untyped = run_cell(kc, 'let w = tokio::select! { a = wait("x", 1) => a, b = wait("y", 2) => b };')
    assert untyped.status == "error"
    said = "\n".join(untyped.of_type("error")[0]["content"]["traceback"])
    assert "could not work out the type of `w`" in said and "let w: TheType" in said, said


def test_the_event_loop_is_drawn_live_and_timeline_off_records_nothing(kc, tmp_path):
    # A task that ticks for 1.5 s: its picture appears while the cell runs (between the
    # cell's first and last line of output), updates in place at most 5 times a second
    # with more polls each time, and the final one comes before the reply.
    ticking = ("let ticker = tokio::spawn(async {\n"
               "    for _ in 0..15 { tokio::time::sleep(std::time::Duration::from_millis(100)).await; }\n"
               "});\n"
               'println!("started");\n'
               "ticker.await.unwrap();\n"
               'println!("done");')
    cell = run_cell(kc, ticking)
    assert cell.status == "ok", cell.reply["content"]
    assert event_loop(cell) is not None
    order = [m["msg_type"] if m["msg_type"] != "stream" else m["content"]["text"]
             for _, m in cell.outputs if m["msg_type"] in ("stream", "display_data",
                                                           "update_display_data")]
    started, done = order.index("started\n"), order.index("done\n")
    live = [m for m in event_loop_pictures(cell)
            if not m["content"]["metadata"]["tandem"]["final"]]
    assert len(live) >= 2, f"{len(live)} live pictures in 1.5 s"
    assert order[started + 1:done].count("display_data") == 1, "the first came while it ran"
    # When the kernel sent them (a client may receive a burst at once).
    span = (live[-1]["header"]["date"] - live[0]["header"]["date"]).total_seconds()
    assert len(live) - 1 <= 5 * span + 1, f"{len(live)} pictures in {span:.2f} s"

    def ticker_polls(picture):
        tasks = picture["content"]["metadata"]["tandem"]["tasks"]
        return sum(task["polls"] for task in tasks if task["id"] != 0)
    polls = [ticker_polls(m) for m in event_loop_pictures(cell)]
    assert polls == sorted(polls) and polls[0] < polls[-1], polls
    final_date = event_loop_pictures(cell)[-1]["header"]["date"]
    assert final_date <= cell.reply["header"]["date"]
    # The same events, saved for Perfetto: the ticker's 16 polls are slices on its thread.
    saved = run_cell(kc, f":trace save {tmp_path / 'ticks.json'}")
    assert saved.status == "ok" and "ui.perfetto.dev" in saved.text(), saved.reply["content"]
    events = json.loads((tmp_path / "ticks.json").read_text())["traceEvents"]
    ticker, = [e for e in events if e["ph"] == "b" and e["id"] != 0]
    slices = [e for e in events if e["ph"] == "X" and e["name"] == ticker["name"]]
    assert len(slices) == polls[-1], (len(slices), polls)

    off = run_cell(kc, ":timeline off")
    assert off.text() == "event-loop timeline off\n"
    quiet = run_cell(kc, ticking)
    assert quiet.status == "ok" and quiet.text() == "started\ndone\n"
    assert event_loop(quiet) is None, "nothing recorded, nothing drawn"
    assert run_cell(kc, ":timeline on").text() == "event-loop timeline on\n"
    assert event_loop(run_cell(kc, ticking)) is not None
