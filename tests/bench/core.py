"""Kernel-core figures, measured from a real Jupyter client on the wire (jupyter_client):
start -> kernel_info_reply, warm trivial-cell latency, print -> iopub lag, interrupt ->
execute_reply, and a 200,000-line flood. Prints a table; asserts nothing.

Run: .venv/bin/python tests/bench/core.py [--runs N] [--kernel NAME]
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


def summary(values, unit="s", scale=1.0):
    values = [v * scale for v in values]
    return (f"median {statistics.median(values):.3f} {unit} "
            f"(min {min(values):.3f}, max {max(values):.3f}, n={len(values)})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--kernel", default="tandem")
    args = parser.parse_args()

    starts = []
    for _ in range(max(3, args.runs // 3)):
        took, km, kc = start_to_kernel_info(args.kernel)
        starts.append(took)
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    took, km, kc = start_to_kernel_info(args.kernel)
    first_started = time.monotonic()
    execute(kc, "1 + 1")
    first_cell = time.monotonic() - first_started

    trivial = []
    for _ in range(args.runs):
        sent = time.monotonic()
        execute(kc, "1 + 1")
        trivial.append(time.monotonic() - sent)

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

    interrupts = []
    for _ in range(max(3, args.runs // 3)):
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

    streams = []
    sent = time.monotonic()
    execute(kc, 'for i in 0..200_000 { println!("{i}"); }',
            lambda m, _: streams.append(1) if m["msg_type"] == "stream" else None)
    flood = time.monotonic() - sent

    kc.stop_channels()
    km.shutdown_kernel(now=True)

    print(f"kernel: {args.kernel}")
    print(f"process start -> kernel_info_reply : {summary(starts)}")
    print(f"first cell `1 + 1` of a new kernel  : {first_cell:.3f} s")
    print(f"warm trivial cell `1 + 1`           : {summary(trivial)}")
    print(f"print -> iopub arrival lag          : {summary(lags, 'ms', 1000)}")
    print(f"interrupt_request -> execute_reply  : {summary(interrupts)}")
    print(f"200,000 printed lines               : reply after {flood:.2f} s, {len(streams)} stream messages")


if __name__ == "__main__":
    main()
