"""The helper crate (kernel/helpers) through the real kernel: blocking tasks take the sum
of their waits, gathered async tasks the longest one, lines arrive live, and a timeline
value renders as SVG whose bars match the recorded spans. The crate is added with :dep
here; preloading it into every session is the next step of issue 3."""
import pathlib
import re

import jupyter_client
import pytest
from conftest import run_cell

HELPERS = pathlib.Path(__file__).resolve().parent.parent / "kernel" / "helpers"


@pytest.fixture(scope="module")
def kc():
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="tandem")
    try:
        setup = run_cell(
            kc,
            f':dep tandem-helpers = {{ path = "{HELPERS}" }}\nuse tandem_helpers::prelude::*;',
            timeout=900,
        )
        assert setup.status == "ok", setup.reply["content"]
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# Two named blocking tasks, 1.0 s and 0.5 s, timed together.
BLOCKING_PAIR = (
    "clock::restart();\n"
    'let (_, took) = timed(|| { blocking_task("A", 1.0); blocking_task("B", 0.5); });\n'
    "took.as_secs_f64()"
)


def seconds(cell):
    return float(cell.value())


def test_blocking_tasks_take_the_sum_and_print_live(kc):
    cell = run_cell(kc, BLOCKING_PAIR)
    assert cell.status == "ok", cell.reply["content"]
    total = seconds(cell)
    print(f"blocking pair 1.0 s + 0.5 s: {total:.3f} s")
    assert 1.5 <= total < 1.5 * 1.2
    lines = [(t, m["content"]["text"]) for t, m in cell.outputs if m["msg_type"] == "stream"]
    arrived = {}
    for t, text in lines:
        for line in text.splitlines():
            arrived[re.sub(r"^\[\s*[\d.]+s\] ", "", line)] = t
    assert list(arrived) == ["A started", "A completed", "B started", "B completed"]
    assert arrived["A completed"] - arrived["A started"] > 0.8, "lines arrive as printed"


def test_gathered_async_tasks_take_the_longest(kc):
    sync = seconds(run_cell(kc, BLOCKING_PAIR))
    cell = run_cell(kc, (
        "clock::restart();\n"
        "let (reports, took) = timed(|| run_on_one_thread(gather(vec![\n"
        '    async_task("A", 1.0),\n'
        '    async_task("B", 0.5),\n'
        "])));\n"
        'println!("{reports:?}");\n'
        "took.as_secs_f64()"
    ))
    assert cell.status == "ok", cell.reply["content"]
    total = seconds(cell)
    print(f"gathered pair: {total:.3f} s, blocking pair: {sync:.3f} s")
    assert 1.0 <= total < 1.0 * 1.2
    assert total < 0.7 * sync
    assert '["A waited 1.00 s", "B waited 0.50 s"]' in cell.text()


def test_timeline_value_is_svg_matching_the_spans(kc):
    # Each cell links its own copy of the crate (evcxr links dependencies statically), so
    # the spans are drawn by the cell that recorded them.
    cell = run_cell(kc, (
        "clock::restart();\n"
        'run_on_one_thread(gather(vec![async_task("slow", 0.6), async_task("fast", 0.3)]));\n'
        "timeline()"
    ))
    assert cell.status == "ok", cell.reply["content"]
    (result,) = cell.of_type("execute_result")
    data = result["content"]["data"]
    assert not cell.displays(), "a value with two mime types stays one value"
    svg = data["image/svg+xml"]
    bars = re.findall(r'data-kind="(\w+)" data-start="([\d.]+)" data-end="([\d.]+)"', svg)
    assert len(bars) == 2
    by_length = sorted(bars, key=lambda b: float(b[2]) - float(b[1]))
    for (kind, start, end), wait in zip(by_length, (0.3, 0.6)):
        assert kind == "async"
        assert float(start) < 0.05
        assert abs(float(end) - float(start) - wait) < 0.05
    assert "total 0.6" in data["text/plain"] and "sum of tasks 0.9" in data["text/plain"]
