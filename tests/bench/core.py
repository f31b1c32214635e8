"""Kernel figures, measured from a real Jupyter client on the wire (jupyter_client): the
first async cell of a fresh kernel (tokio::join! of 1.0 s and 0.5 s; evcxr_jupyter gets the
:dep line it needs), start -> kernel_info_reply, warm trivial and async cells, a sync
example's first line on re-run, print -> iopub lag, interrupt -> execute_reply, a
200,000-line flood, 100 MB printed; for tandem also the timeline's accuracy and the first async cell of a
kernel that finds a standby ready. Prints a table (median, min, max); asserts nothing but
that the cells worked.

Run: .venv/bin/python tests/bench/core.py [--runs N] [--kernels tandem rust]
(after tests/run or `cargo run --release -- lab` has created .venv and the kernelspec)."""
import argparse
import os
import pathlib
import signal
import statistics
import subprocess
import tempfile
import time

import jupyter_client


def wait_idle(kc, msg_id, on_message=None, timeout=300):
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if on_message:
            on_message(msg, time.time())
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return


def execute(kc, code, on_message=None):
    """Runs a cell, watching iopub as messages arrive (idle comes after the reply)."""
    msg_id = kc.execute(code)
    wait_idle(kc, msg_id, on_message)
    return kc.get_shell_msg(timeout=300)


def start_to_kernel_info(kernel_name):
    km = jupyter_client.KernelManager(kernel_name=kernel_name)
    started = time.monotonic()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    while True:
        kc.kernel_info()
        try:
            kc.get_shell_msg(timeout=0.05)
            break
        except Exception:
            continue
    took = time.monotonic() - started
    return took, km, kc


ASYNC_WAITS = 1.0
ASYNC_CELL = (
    "tokio::join!(\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(1000)),\n"
    "    tokio::time::sleep(std::time::Duration::from_millis(500)),\n"
    ");"
)
# evcxr_jupyter has no tokio until a cell asks for it.
TOKIO_DEP = ':dep tokio = { version = "1", features = ["full"] }\n'


def first_async_cell(kernel_name, after):
    """A fresh kernel's first cell, a tokio::join! of 1.0 s and 0.5 s sleeps, sent `after`
    seconds after kernel_info: seconds from sending it to its reply, minus its 1.0 s."""
    _, km, kc = start_to_kernel_info(kernel_name)
    try:
        time.sleep(after)
        code = ASYNC_CELL if kernel_name == "tandem" else TOKIO_DEP + ASYNC_CELL
        sent = time.monotonic()
        reply = execute(kc, code)
        assert reply["content"]["status"] == "ok", reply["content"]
        return time.monotonic() - sent - ASYNC_WAITS
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def standby_ready(dir, timeout=300):
    deadline = time.monotonic() + timeout
    while not (dir / "standby.ready").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("no standby kernel became ready")
        time.sleep(0.1)


def first_async_cell_with_standby(samples):
    """tandem with standbys on (its default): each fresh kernel finds the engine a kernel
    before it started (waited for here), and hands its connection file to it. Returns the
    first async cells' (reply - waits) and the starts -> kernel_info_reply."""
    dir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-bench-standby-"))
    os.environ.update(TANDEM_STANDBY="on", TANDEM_STANDBY_DIR=str(dir))
    cells, starts = [], []
    try:
        # The first kernel has no standby to take; once its engine is up it starts one.
        took, km, kc = start_to_kernel_info("tandem")
        execute(kc, "1")
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        for _ in range(samples):
            standby_ready(dir)
            cells.append(first_async_cell("tandem", 0))
        for _ in range(samples):
            standby_ready(dir)
            took, km, kc = start_to_kernel_info("tandem")
            starts.append(took)
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    finally:
        os.environ["TANDEM_STANDBY"] = "off"
        lock = dir / "standby.lock"
        holder = lock.read_text().strip() if lock.exists() else ""
        if holder.isdigit():
            try:
                os.kill(int(holder), signal.SIGTERM)
            except ProcessLookupError:
                pass
    return cells, starts


def timing_accuracy(kc, samples):
    """The total the timeline prints for two blocking tasks (2 s then 1 s), minus the wall
    time between the first task's start line and the last one's end line on arrival."""
    errors = []
    for _ in range(samples):
        arrivals, totals = {}, []

        def watch(msg, arrived):
            if msg["msg_type"] == "stream":
                for line in msg["content"]["text"].splitlines():
                    arrivals.setdefault(line.split("] ", 1)[-1], arrived)
            tandem = msg["content"].get("metadata", {}).get("tandem", {})
            if msg["msg_type"] == "display_data" and tandem.get("role") == "timeline":
                totals.append(tandem["total_seconds"])

        execute(kc, 'blocking_task("first", 2.0);\nblocking_task("second", 1.0);', watch)
        wall = arrivals["second completed"] - arrivals["first started"]
        errors.append(totals[0] - wall)
    return errors


SYNC_EXAMPLE = (
    'for (name, seconds) in [("download", 0.3), ("parse", 0.2)] {\n'
    '    println!("{name} started");\n'
    "    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));\n"
    '    println!("{name} done");\n'
    "}"
)


def measure(kernel_name, runs):
    """Every figure for one kernel: name -> list of samples (seconds) or a note."""
    figures = {}
    if kernel_name == "tandem":
        # The cold figures: each kernel starts its own engine. The floods measure the
        # kernel's own throughput, not the pace a shared server sets (TANDEM_OUTPUT_RATE).
        os.environ["TANDEM_STANDBY"] = "off"
        os.environ["TANDEM_OUTPUT_RATE"] = "off"
    figures["first async cell, sent at kernel_info: reply - waits"] = [
        first_async_cell(kernel_name, 0) for _ in range(2)]
    figures["first async cell, sent 20 s after kernel_info: reply - waits"] = [
        first_async_cell(kernel_name, 20) for _ in range(2)]
    starts = []
    for _ in range(max(3, runs // 3)):
        took, km, kc = start_to_kernel_info(kernel_name)
        starts.append(took)
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    figures["process start -> kernel_info_reply"] = starts

    took, km, kc = start_to_kernel_info(kernel_name)
    first_started = time.monotonic()
    execute(kc, "1 + 1")
    figures["first `1 + 1` after kernel_info"] = [time.monotonic() - first_started]

    # Distinct code each time (`2 + 1`, `3 + 1`, ...): what a learner's next cell costs, not
    # what a compiler cache makes of the same cell again.
    trivial = []
    for n in range(2, runs + 2):
        sent = time.monotonic()
        execute(kc, f"{n} + 1")
        trivial.append(time.monotonic() - sent)
    figures["warm trivial cell (`n + 1`, distinct)"] = trivial

    definitions = []
    for n in range(runs):
        sent = time.monotonic()
        execute(kc, f"fn bench_{n}(x: i64) -> i64 {{ x * {n} }}\nlet bench_value_{n} = bench_{n}(2);")
        definitions.append(time.monotonic() - sent)
    figures["a cell defining a `fn` and a `let` (first run)"] = definitions

    if kernel_name != "tandem":
        execute(kc, TOKIO_DEP + "1")
    warm_async = []
    for _ in range(runs):
        sent = time.monotonic()
        execute(kc, ASYNC_CELL)
        warm_async.append(time.monotonic() - sent - ASYNC_WAITS)
    figures["warm async cell: reply - waits"] = warm_async

    first_line = []
    for _ in range(runs):
        arrived = []
        sent = time.monotonic()
        execute(kc, SYNC_EXAMPLE,
                lambda m, _: arrived.append(time.monotonic())
                if m["msg_type"] == "stream" and not arrived else None)
        first_line.append(arrived[0] - sent)
    figures["sync example re-run: send -> first line"] = first_line

    if kernel_name == "tandem":
        figures["timeline total - wall, a 2 s + 1 s pair"] = timing_accuracy(
            kc, max(3, runs // 3))

    lags = []
    code = (
        "for _ in 0..20 {\n"
        "    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();\n"
        '    println!("{:.6}", now.as_secs_f64());\n'
        "    std::thread::sleep(std::time::Duration::from_millis(50));\n"
        "}"
    )

    def record_lag(msg, arrived):
        if msg["msg_type"] == "stream":
            for line in msg["content"]["text"].split():
                lags.append(arrived - float(line))

    execute(kc, code, record_lag)
    figures["print -> iopub lag"] = lags

    interrupts = []
    for _ in range(max(3, runs // 3)):
        msg_id = kc.execute('println!("go");\nloop { std::hint::spin_loop(); }')
        while True:
            msg = kc.get_iopub_msg(timeout=120)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                break
        sent = time.monotonic()
        km.interrupt_kernel()
        kc.get_shell_msg(timeout=60)
        interrupts.append(time.monotonic() - sent)
        wait_idle(kc, msg_id)
    figures["interrupt -> execute_reply"] = interrupts

    streams = []
    sent = time.monotonic()
    execute(kc, 'for i in 0..200_000 { println!("{i}"); }',
            lambda m, _: streams.append(1) if m["msg_type"] == "stream" else None)
    figures["200,000 printed lines -> reply"] = [time.monotonic() - sent]
    figures["200,000 printed lines: stream messages"] = len(streams)

    # Output a client must take as fast as it can: iopub merges what waits, and holds the
    # cell back once 32 MiB wait (tandem); the figure is the whole path's throughput.
    streams.clear()
    sent = time.monotonic()
    execute(kc, 'let line = "x".repeat(999);\nfor _ in 0..100_000 { println!("{line}"); }',
            lambda m, _: streams.append(1) if m["msg_type"] == "stream" else None)
    figures["100 MB printed (1 kB lines) -> reply"] = [time.monotonic() - sent]
    figures["100 MB printed: stream messages"] = len(streams)

    kc.stop_channels()
    km.shutdown_kernel(now=True)

    if kernel_name == "tandem":
        cells, starts = first_async_cell_with_standby(max(3, runs // 3))
        figures["first async cell, standby ready: reply - waits"] = cells
        figures["start -> kernel_info_reply, standby ready"] = starts
    return figures


def rust_src_present():
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True)
    library = pathlib.Path(sysroot.stdout.strip()) / "lib/rustlib/src/rust/library"
    return sysroot.returncode == 0 and library.is_dir()


def cell(samples):
    if isinstance(samples, int):
        return str(samples)
    unit, scale = ("ms", 1000) if statistics.median(samples) < 0.01 else ("s", 1)
    median = statistics.median(samples) * scale
    if len(samples) == 1:
        return f"{median:.3f} {unit}"
    return (f"{median:.3f} {unit} (min {min(samples) * scale:.3f}, "
            f"max {max(samples) * scale:.3f}, n={len(samples)})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kernels", nargs="+", default=["tandem"],
                        help="kernelspec names, e.g. tandem rust (evcxr_jupyter)")
    args = parser.parse_args()

    results = {name: measure(name, args.runs) for name in args.kernels}
    print(f"rust-src: {'present' if rust_src_present() else 'absent'} "
          "(rust-analyzer reads the standard library when it is)")
    names = list(results)
    header = "| figure | " + " | ".join(names)
    if len(names) == 2:
        header += f" | {names[0]} / {names[1]}"
    print(header + " |")
    print("|---" * (len(names) + 1 + (len(names) == 2)) + "|")
    figures = list(dict.fromkeys(f for name in names for f in results[name]))
    for figure in figures:
        values = [results[name].get(figure) for name in names]
        row = f"| {figure} | " + " | ".join("n/a" if v is None else cell(v) for v in values)
        if len(names) == 2:
            if None in values:
                row += " | -"
            else:
                a, b = (v if isinstance(v, int) else statistics.median(v) for v in values)
                row += f" | {a / b:.2f}" if b else " | -"
        print(row + " |")


if __name__ == "__main__":
    main()
