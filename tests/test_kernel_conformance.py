"""jupyter_kernel_test's conformance suite against the installed tandem kernelspec: every
sample attribute the package knows is filled in."""
import unittest

import jupyter_kernel_test


class TandemKernelTests(jupyter_kernel_test.KernelTests):
    """The suite assumes every display_data of a cell carries the sample's mime type;
    tandem's timing footer is a display_data of its own, so the suite runs with the
    footer off (the footer is tested in test_protocol.py)."""

    kernel_name = "tandem"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The suite gives each request 15 s; let the engine finish starting first (its
        # warm-up is measured by tests/bench/core.py, not here).
        for code in (":timing off", "1"):
            msg_id = cls.kc.execute(code)
            reply = cls.kc.get_shell_msg(timeout=300)
            assert reply["parent_header"]["msg_id"] == msg_id
            assert reply["content"]["status"] == "ok"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("something went wrong");'

    completion_samples = [
        {"text": "let zebra_stripes = 3;\nzebra_st", "matches": {"zebra_stripes"}},
    ]

    complete_code_samples = [
        "1 + 1",
        "let x = 5;",
        "fn add(a: i32, b: i32) -> i32 { a + b }",
        'println!("{}", "}");',
    ]
    incomplete_code_samples = [
        "fn main() {",
        "let v = vec![1, 2,",
        'let s = "unfinished',
        "let total = 1 +",
    ]
    invalid_code_samples = ["fn fn", "let x = (1 + 2];", "}"]

    code_page_something = ":help"

    code_generate_error = 'let y: i32 = "not a number";'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"hello".len()', "result": "5"},
        {"code": "vec![1, 2, 3]", "result": "[1, 2, 3]"},
    ]
    code_history_pattern = "6 *"

    supported_history_operations = ("tail", "range", "search")

    code_display_data = [
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>bold</b>\\nEVCXR_END_CONTENT");',
            "mime": "text/html",
        },
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT image/svg+xml\\n<svg xmlns=\\"http://www.w3.org/2000/svg\\"/>\\nEVCXR_END_CONTENT");',
            "mime": "image/svg+xml",
        },
    ]

    code_inspect_sample = "std::vec::Vec"

    code_clear_output = (
        'println!("before");\n'
        'println!("EVCXR_BEGIN_CONTENT application/vnd.tandem.clear-output\\n\\nEVCXR_END_CONTENT");'
    )


class TandemIopubWelcome(jupyter_kernel_test.IopubWelcomeTests):
    kernel_name = "tandem"
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
