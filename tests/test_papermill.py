"""papermill with the tandem kernel: the translator of integrations/papermill (found by
papermill itself, never imported here) writes `-p name value` as typed Rust `let`s. Lesson 2
run with other waits measures those waits; tricky values (quotes, line breaks, bidi marks,
NaN, the widest integers) come back exactly from a real kernel, in a later cell; what Rust
cannot type is refused before anything runs, naming the parameter."""
import math
import pathlib
import struct
import subprocess
import sys

import nbformat
import papermill
import pytest
from papermill.exceptions import PapermillException
from papermill.translators import papermill_translators

from conftest import run_cell

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "02-synchronous.ipynb"


def rust():
    """The translator papermill picks for a notebook of the tandem kernel."""
    try:
        return papermill_translators.find_translator("tandem", "rust")
    except PapermillException as error:
        pytest.fail(f"{error}: install integrations/papermill into .venv (tests/run does)")


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def timeline(cell):
    """The figures of the timeline tandem drew under `cell`."""
    [figures] = [o["metadata"]["tandem"] for o in cell.outputs
                 if o.get("metadata", {}).get("tandem", {}).get("role") == "timeline"]
    return figures


# -- a lesson run with parameters ---------------------------------------------------------

def test_lesson_2_run_by_papermill_measures_the_waits_it_was_given(tmp_path):
    # The lesson waits 1.0, 0.5 and 0.25 s: download A the longest. These turn that round.
    waits = {"wait_a": 0.2, "wait_b": 0.1, "wait_c": 0.8}
    nb = papermill.execute_notebook(str(LESSON), str(tmp_path / "out.ipynb"),
                                    kernel_name="tandem", parameters=waits,
                                    progress_bar=False)
    ids = [c.id for c in nb.cells]
    [injected] = [c for c in nb.cells if "injected-parameters" in tags(c)]
    assert ids.index(injected.id) == ids.index("02-parameters") + 1
    assert injected.source == ("// Parameters\nlet wait_a: f64 = 0.2;\n"
                               "let wait_b: f64 = 0.1;\nlet wait_c: f64 = 0.8;\n")
    assert nb.metadata.papermill.parameters == waits

    [staircase] = [c for c in nb.cells if "claim:sync-sum" in tags(c)]
    figures = timeline(staircase)
    took = {t["name"]: t["end"] - t["start"] for t in figures["tasks"]}
    assert list(took) == ["download A", "download B", "download C"]
    for name, wait in zip(took, waits.values()):
        assert took[name] >= wait - 0.005, f"{name} waited its new {wait} s at least"
    assert took["download C"] > 2 * took["download A"], took  # 0.25 < 1.0 with the defaults
    assert figures["total_seconds"] < 1.75, "the staircase is not the default's 1.75 s"
    assert not figures["overlapped"]


def test_the_papermill_command_injects_parameters_and_lists_them(tmp_path):
    command = pathlib.Path(sys.executable).with_name("papermill")
    out = tmp_path / "prepared.ipynb"
    prepared = subprocess.run(
        [str(command), str(LESSON), str(out), "--prepare-only", "-p", "wait_c", "0.8",
         "-p", "label", 'say "hi"'], capture_output=True, text=True, timeout=120)
    assert prepared.returncode == 0, prepared.stderr
    [injected] = [c for c in nbformat.read(out, as_version=4).cells
                  if "injected-parameters" in tags(c)]
    assert injected.source.splitlines()[1:] == [
        "let wait_c: f64 = 0.8;", 'let label: String = String::from("say \\"hi\\"");']

    helped = subprocess.run([str(command), str(LESSON), "--help-notebook"],
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0, helped.stderr
    for line in ("wait_a: f64 (default 1.0)", "wait_b: f64 (default 0.5)",
                 "wait_c: f64 (default 0.25)"):
        assert line in helped.stdout, helped.stdout
    assert "download C" in helped.stdout


def test_inspection_reads_the_lesson_parameters_cell():
    found = papermill.inspect_notebook(str(LESSON))
    assert found == {
        name: {"name": name, "inferred_type_name": "f64", "default": default,
               "help": f"download {name[-1].upper()}"}
        for name, default in (("wait_a", "1.0"), ("wait_b", "0.5"), ("wait_c", "0.25"))}


# -- the translator on its own ------------------------------------------------------------

def test_parameters_become_typed_lets():
    assert rust().codify({"waits_ms": 250, "name": 'a "b"', "ratio": 0.5, "on": True,
                          "none": None}, comment="from\nthe teacher") == (
        "// from\n// the teacher\n"
        "let waits_ms: i64 = 250;\n"
        'let name: String = String::from("a \\"b\\"");\n'
        "let ratio: f64 = 0.5;\n"
        "let on: bool = true;\n"
        "let none: () = ();\n")
    # A whole number is an int, even for a parameter the notebook declares as f64.
    assert rust().codify({"wait": 2}, comment="") == "//\nlet wait: i64 = 2;\n"


STRINGS = {
    "quotes": "say \"hi\" and 'bye'",
    "backslashes": "C:\\temp\\ \\\" \\n \\u{41} ends with \\",
    "lines": "one\ntwo\r\nthree\rfour",
    "controls": "tab\t nul\0 bell\a escape\x1b delete\x7f",
    "unicode": "é ü 中文 🦀 e\u0301 \ufeff \u00a0 \U0001d11e",
    "bidi": "\u202eevil\u202c \u2066\u2069 \u2028\u2029",
    "breakout": '"); std::process::exit(1); let x = ("',
    "raw": 'r#"raw"#',
    "braces": "{} {0} {{",
    "empty": "",
}
INTEGERS = {"zero": 0, "minus_one": -1, "i64_max": 2**63 - 1, "i64_min": -2**63,
            "past_i64": 2**63, "i128_min": -2**127, "i128_max": 2**127 - 1}
FLOATS = {"tenth": 0.1, "negative_zero": -0.0, "exponent": 1e16, "small": 1e-7,
          "subnormal": 5e-324, "largest": sys.float_info.max, "infinity": math.inf,
          "minus_infinity": -math.inf}
# name: (value, its Debug text as the kernel prints it)
OTHERS = {
    "yes": (True, "true"),
    "nothing": (None, "()"),
    "flags": ([True, False], "[true, false]"),
    "waits": ([1, 0.5, 2], "[1.0, 0.5, 2.0]"),
    "names": (["a", 'b"', "🦀"], '["a", "b\\"", "🦀"]'),
    "grid": ([[1, 2], [3]], "[[1, 2], [3]]"),
    "wide": ([2**64, -1], "[18446744073709551616, -1]"),
    "limits": ({"b": 2, "a": 1}, '[("a", 1), ("b", 2)]'),  # sorted: a HashMap has no order
}


def test_tricky_values_compile_and_come_back_exactly_in_a_later_cell(kc):
    values = {**STRINGS, **INTEGERS, **FLOATS, "not_a_number": math.nan,
              **{name: value for name, (value, _) in OTHERS.items()}}
    injected = run_cell(kc, rust().codify(values))
    assert injected.status == "ok", injected.reply["content"]

    probes = [f'println!("{n}={{:?}}", {n}.chars().map(|c| c as u32).collect::<Vec<u32>>());'
              for n in STRINGS]
    probes += [f'println!("{n}={{}} {{}}", {n}, std::any::type_name_of_val(&{n}));'
               for n in INTEGERS]
    probes += [f'println!("{n}={{}}", {n}.to_bits());' for n in FLOATS]
    probes.append('println!("not_a_number={}", not_a_number.is_nan());')
    probes.append("let mut limits: Vec<_> = limits.into_iter().collect(); limits.sort();")
    probes += [f'println!("{n}={{:?}}", {n});' for n in OTHERS]
    probed = run_cell(kc, "\n".join(probes))
    assert probed.status == "ok", probed.reply["content"]
    printed = dict(line.split("=", 1) for line in probed.text().splitlines())

    for name, value in STRINGS.items():
        assert printed[name] == str([ord(c) for c in value]), name
    for name, value in INTEGERS.items():
        assert printed[name] == f"{value} {rust().rust_type(value)}", name
    assert {printed[n] for n in ("i64_max", "past_i64")} == {f"{2**63 - 1} i64", f"{2**63} i128"}
    for name, value in FLOATS.items():
        assert printed[name] == str(struct.unpack("<Q", struct.pack("<d", value))[0]), name
    assert printed["not_a_number"] == "true"
    for name, (_, debug) in OTHERS.items():
        assert printed[name] == debug, name


@pytest.mark.parametrize("name, value, reason", [
    ("2fast", 1, "is not a Rust variable name"),
    ("with-dash", 1, "is not a Rust variable name"),
    ("délai", 1, "is not a Rust variable name"),
    ("_", 1, "is not a Rust variable name"),
    ("", 1, "is not a Rust variable name"),
    ("type", 1, "is a Rust keyword"),
    ("self", 1, "is a Rust keyword"),
    ("gen", 1, "is a Rust keyword"),
    ("mixed", [1, "a"], "mixes String, i64"),
    ("bools_and_ints", [True, 1], "mixes bool, i64"),
    ("holes", [1, None], "mixes (), i64"),
    ("nested", [[1], ["a"]], "mixes Vec<String>, Vec<i64>"),
    ("empty", [], "empty list or dict"),
    ("empty_map", {}, "empty list or dict"),
    ("map", {"a": 1, "b": "x"}, "mixes String, i64"),
    ("int_keys", {1: 2}, "keys are not all strings"),
    ("too_big", 2**127, "too big for i128"),
    ("inexact", [2**53 + 1, 0.5], "f64 cannot hold it exactly"),
    ("surrogate", "a\ud800", "lone surrogate (U+D800)"),
    ("pair", (1, 2), "holds a tuple"),
])
def test_what_rust_cannot_hold_is_refused_naming_the_parameter(name, value, reason):
    with pytest.raises(ValueError) as refused:
        rust().codify({"fine": 1, name: value})
    message = str(refused.value)
    assert message.startswith(f"papermill parameter {name!r} ") and reason in message, message


def test_papermill_refuses_a_bad_parameter_before_starting_a_kernel(tmp_path):
    with pytest.raises(ValueError, match="papermill parameter 'loop' is a Rust keyword"):
        papermill.execute_notebook(str(LESSON), str(tmp_path / "out.ipynb"),
                                   parameters={"loop": 3}, progress_bar=False)
    assert not (tmp_path / "out.ipynb").exists()
