"""Kernel figures, measured from a real Jupyter client on the wire (jupyter_client): the
first async cell of a fresh kernel (tokio::join! of 1.0 s and 0.5 s; evcxr_jupyter gets the
:dep line it needs), start -> kernel_info_reply, warm trivial and async cells, print ->
iopub lag, interrupt -> execute_reply, and a 200,000-line flood. Prints a table; asserts
nothing but that the cells worked.

Run: .venv/bin/python tests/bench/core.py [--runs N] [--kernels tandem rust]
(after tests/run or `cargo run --release -- lab` has created .venv and the kernelspec)."""
import argparse
import statistics
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


def measure(kernel_name, runs):
    """Every figure for one kernel: name -> list of samples (seconds) or a note."""
    figures = {}
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

    trivial = []
    for _ in range(runs):
        sent = time.monotonic()
        execute(kc, "1 + 1")
        trivial.append(time.monotonic() - sent)
    figures["warm `1 + 1`"] = trivial

    if kernel_name != "tandem":
        execute(kc, TOKIO_DEP + "1")
    warm_async = []
    for _ in range(runs):
        sent = time.monotonic()
        execute(kc, ASYNC_CELL)
        warm_async.append(time.monotonic() - sent - ASYNC_WAITS)
    figures["warm async cell: reply - waits"] = warm_async

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

    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return figures


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
    names = list(results)
    header = "| figure | " + " | ".join(names)
    if len(names) == 2:
        header += f" | {names[0]} / {names[1]}"
    print(header + " |")
    print("|---" * (len(names) + 1 + (len(names) == 2)) + "|")
    for figure in results[names[0]]:
        values = [results[name][figure] for name in names]
        row = f"| {figure} | " + " | ".join(cell(v) for v in values)
        if len(names) == 2:
            a, b = (v if isinstance(v, int) else statistics.median(v) for v in values)
            row += f" | {a / b:.2f}" if b else " | -"
        print(row + " |")


if __name__ == "__main__":
    main()
