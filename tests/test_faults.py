"""Bad input and runaway cells: the kernel keeps serving. Interrupts, output floods,
forged messages and restarts, all through jupyter_client against the real kernel."""
import time

from jupyter_client.session import Session
from conftest import heartbeat_answers, own_kernel, run_cell


def wait_for_stream(kc, msg_id, text, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                and text in msg["content"]["text"]):
            return
    raise AssertionError(f"{text!r} never arrived")


def test_interrupt_stops_an_endless_loop_and_says_what_was_lost(kernel):
    km, kc = kernel
    assert run_cell(kc, "let before_interrupt = 1;").status == "ok"
    msg_id = kc.execute('println!("spinning");\nloop { std::hint::spin_loop(); }')
    wait_for_stream(kc, msg_id, "spinning")
    assert heartbeat_answers(km), "heartbeat must answer while the loop spins"
    sent = time.monotonic()
    km.interrupt_kernel()
    reply = kc.get_shell_msg(timeout=30)
    took = time.monotonic() - sent
    print(f"interrupt -> execute_reply: {took:.3f} s")
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "Interrupted"
    assert "variable" in reply["content"]["evalue"]
    # Ready for the next cell without a restart; the lost variable is really gone.
    after = run_cell(kc, "40 + 2")
    assert after.value() == "42", after.reply["content"]
    assert run_cell(kc, "before_interrupt").status == "error"


def test_flood_of_output_loses_nothing(kc):
    n = 200_000
    started = time.monotonic()
    cell = run_cell(kc, f"for i in 0..{n} {{ println!(\"{{i}}\"); }}")
    took = time.monotonic() - started
    streams = cell.of_type("stream")
    print(f"{n} lines: reply after {took:.2f} s in {len(streams)} stream messages")
    assert cell.status == "ok"
    lines = cell.text().splitlines()
    assert lines == [str(i) for i in range(n)]
    assert run_cell(kc, "1 + 1").value() == "2"


def test_forged_and_unsigned_messages_are_not_executed(kc, tmp_path):
    marker = tmp_path / "forged.txt"
    code = f'std::fs::write("{marker}", "x").unwrap();'
    for key in (b"wrong-key", b""):
        forger = Session(key=key, username="mallory")
        forger.send(kc.shell_channel.socket, "execute_request",
                    {"code": code, "silent": False, "store_history": True,
                     "user_expressions": {}, "allow_stdin": False, "stop_on_error": True})
    # Had either been run, it would have run before this one.
    assert run_cell(kc, "2 + 2").value() == "4"
    assert not marker.exists()


def test_panicking_thread_and_exit_keep_the_kernel_serving(kc):
    cell = run_cell(kc, 'std::thread::spawn(|| panic!("in a thread")).join().is_err()')
    assert cell.status == "ok"
    assert cell.value() == "true"
    assert "in a thread" in cell.text("stderr")
    ended = run_cell(kc, "std::process::exit(3);")
    assert ended.status == "error"
    assert "variable" in ended.reply["content"]["evalue"]
    assert run_cell(kc, "5 * 5").value() == "25"


def test_restart_gives_a_working_kernel():
    with own_kernel() as (km, kc):
        assert run_cell(kc, "let a = 1;").status == "ok"
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        assert run_cell(kc, "6 * 7").value() == "42"
        assert run_cell(kc, "a").status == "error"


def test_output_without_newline_at_the_end_of_a_cell(kc):
    code = 'use std::io::Write;\nprint!("working...");\nstd::io::stdout().flush().unwrap();'
    cell = run_cell(kc, code, timeout=60)
    assert cell.status == "ok"
    assert "working..." in cell.text()


def test_lines_printed_before_process_exit_are_kept(kc):
    cell = run_cell(kc, 'println!("last words");\nstd::process::exit(0);')
    assert cell.status == "error"
    assert "last words" in cell.text()
    assert run_cell(kc, "1").value() == "1"


def test_a_thread_that_keeps_writing_does_not_hold_the_cell():
    with own_kernel() as (_, kc):
        code = (
            "std::thread::spawn(|| {\n"
            "    let until = std::time::Instant::now() + std::time::Duration::from_secs(8);\n"
            "    while std::time::Instant::now() < until {\n"
            '        eprintln!("tick");\n'
            "        std::thread::sleep(std::time::Duration::from_millis(2));\n"
            "    }\n"
            "});\n"
            '"started"'
        )
        run_cell(kc, "1")  # the engine is warm
        cell = run_cell(kc, code)
        replied_after = cell.outputs[-1][0]
        print(f"reply {replied_after:.2f} s after send while a thread writes for 8 s")
        assert cell.status == "ok"
        assert replied_after < 6.0


def test_kernel_stops_when_the_process_that_started_it_dies(tmp_path):
    """Like ipykernel's parent poller: a kernel orphaned by a killed Jupyter exits."""
    import pathlib
    import subprocess
    import uuid

    from jupyter_client.connect import write_connection_file
    from jupyter_client.kernelspec import KernelSpecManager

    connection_file, _ = write_connection_file(str(tmp_path / "kernel.json"),
                                               key=uuid.uuid4().hex.encode())
    binary = KernelSpecManager().get_kernel_spec("tandem").argv[0]
    log = tmp_path / "kernel.log"
    # A shell starts the kernel in the background (naming itself the parent, as Jupyter
    # does), prints the kernel's pid, waits until the kernel says it is serving (its log
    # line, within 30 s), and exits.
    started = subprocess.run(
        ["sh", "-c", f'JPY_PARENT_PID=$$ "{binary}" kernel -f "{connection_file}" '
                     f'>/dev/null 2>"{log}" & echo $!; '
                     f'for _ in $(seq 300); do grep -q "serving on" "{log}" && break; '
                     f'sleep 0.1; done'],
        capture_output=True, text=True, check=True)
    pid = int(started.stdout.strip())

    def running():
        try:
            return "State:\tZ" not in pathlib.Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False  # gone (or exited, waiting to be reaped by its new parent)

    deadline = time.monotonic() + 15
    while running() and time.monotonic() < deadline:
        time.sleep(0.2)
    still_running = running()
    if still_running:
        subprocess.run(["kill", "-9", str(pid)])
    assert not still_running, "an orphaned kernel must stop by itself"
    assert "started this kernel is gone" in log.read_text(), "it stopped for that reason"
