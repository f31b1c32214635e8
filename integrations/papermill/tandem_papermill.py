"""papermill parameters for Rust notebooks (the tandem kernel, or evcxr's): `papermill -p
name value` injects each value as a typed Rust `let`, which the kernel keeps across cells."""
# Installed, this module is imported by papermill itself (see pyproject.toml) and registers
# RustTranslator for the language "rust". A value keeps the type of its Python value:
#
#   None  ()          bool  bool        int  i64 (i128 if it needs more)      float  f64
#   str   String      list  Vec<T>      dict with str keys  HashMap<String, T>
#
# Rust has no null: None becomes the unit value `()`, Rust's "nothing", which compiles
# here and makes a later cell that needs a real value fail at that use, naming `()`.
# `-p wait 2` is an int, so `2.0` is the way to give an f64 parameter a whole number.
# What Rust cannot type (an empty or mixed list, a name that is no Rust variable) is a
# ValueError naming the parameter, raised before the notebook runs.
import math
import re

from papermill.models import Parameter
from papermill.translators import Translator, papermill_translators

# Strict and reserved keywords (`gen` too: evcxr cannot read a variable so named back).
KEYWORDS = frozenset(
    "as async await break const continue crate dyn else enum extern false fn for gen if "
    "impl in let loop match mod move mut pub ref return self Self static struct super "
    "trait true try type unsafe use where while abstract become box do final macro "
    "override priv typeof unsized virtual yield".split()
)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# One parameter a line, as a parameters cell declares it: `let name: Type = value; // help`
DECLARATION = re.compile(
    r"\s*let\s+(?:mut\s+)?(\w+)\s*(?::\s*([^=]+?))?\s*=\s*(.+?);\s*(?://\s*(.*))?")
ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


class RustTranslator(Translator):
    """A Python value as a Rust expression (`translate`) and its Rust type (`rust_type`)."""

    @classmethod
    def rust_type(cls, val):
        if val is None:
            return "()"
        if isinstance(val, bool):
            return "bool"
        if isinstance(val, int):
            for name, bits in (("i64", 64), ("i128", 128)):
                if -(2 ** (bits - 1)) <= val < 2 ** (bits - 1):
                    return name
            raise ValueError(f"holds {val}, too big for i128 (Rust's widest integer)")
        if isinstance(val, float):
            return "f64"
        if isinstance(val, str):
            return "String"
        if isinstance(val, list):
            return f"Vec<{cls.item_type(val)}>"
        if isinstance(val, dict):
            if not all(isinstance(key, str) for key in val):
                raise ValueError("holds a dict whose keys are not all strings (a dict "
                                 "becomes a HashMap<String, _>)")
            return f"std::collections::HashMap<String, {cls.item_type(list(val.values()))}>"
        raise ValueError(f"holds a {type(val).__name__}: only None, bool, int, float, str, "
                         "and lists and dicts of them become Rust values")

    @classmethod
    def item_type(cls, items):
        """The one type that a Vec's items, or a HashMap's values, all have."""
        types = {cls.rust_type(item) for item in items}
        if not types:
            raise ValueError("holds an empty list or dict, whose item type Rust cannot "
                             "know: give it one item at least")
        if "f64" in types and types <= {"i64", "i128", "f64"}:
            return "f64"  # whole numbers among floats (translate_item writes them as such)
        if types == {"i64", "i128"}:
            return "i128"
        if len(types) > 1:
            raise ValueError(f"holds a list or dict that mixes {', '.join(sorted(types))}: "
                             "a Rust Vec or HashMap holds items of one type")
        return types.pop()

    @classmethod
    def translate(cls, val):
        cls.rust_type(val)  # refuses what has no Rust type (papermill would write it as a str)
        return super().translate(val)

    @classmethod
    def translate_escaped_str(cls, str_val):
        """A Rust string literal that no value can end early or break: quotes, backslashes,
        line breaks and every unprintable character (controls, bidi marks) are escaped."""
        chars = []
        for char in str_val:
            if "\ud800" <= char <= "\udfff":
                raise ValueError(f"holds a lone surrogate (U+{ord(char):04X}), which a Rust "
                                 "string cannot")
            if char in ESCAPES:
                chars.append(ESCAPES[char])
            else:
                chars.append(char if char.isprintable() else f"\\u{{{ord(char):x}}}")
        return '"' + "".join(chars) + '"'

    @classmethod
    def translate_str(cls, val):
        return f"String::from({cls.translate_escaped_str(val)})"

    @classmethod
    def translate_none(cls, val):
        return "()"

    @classmethod
    def translate_int(cls, val):
        return str(val)

    @classmethod
    def translate_float(cls, val):
        if math.isnan(val):
            return "f64::NAN"
        if math.isinf(val):
            return "f64::INFINITY" if val > 0 else "f64::NEG_INFINITY"
        return repr(val)  # the shortest digits that read back as this float, in rustc too

    @classmethod
    def translate_item(cls, item, item_type):
        """An item of a collection of `item_type`: a whole number among floats is written
        as a float, if f64 holds it exactly."""
        if item_type == "f64" and not isinstance(item, float):
            if float(item) != item:
                raise ValueError(f"holds {item} among floats, and f64 cannot hold it exactly")
            item = float(item)
        return cls.translate(item)

    @classmethod
    def translate_list(cls, val):
        item_type = cls.item_type(val)
        return "vec![" + ", ".join(cls.translate_item(item, item_type) for item in val) + "]"

    @classmethod
    def translate_dict(cls, val):
        value_type = cls.item_type(list(val.values()))
        pairs = (f"({cls.translate_str(key)}, {cls.translate_item(value, value_type)})"
                 for key, value in val.items())
        return f"std::collections::HashMap::from([{', '.join(pairs)}])"

    @classmethod
    def comment(cls, cmt_str):
        return "\n".join(f"// {line}".rstrip() for line in cmt_str.splitlines() or [""])

    @classmethod
    def assign(cls, name, str_val, rust_type=None):
        annotation = f": {rust_type}" if rust_type else ""
        return f"let {name}{annotation} = {str_val};"

    @classmethod
    def check_name(cls, name):
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name) or name == "_":
            raise ValueError("is not a Rust variable name (ASCII letters, digits and _, "
                             "not starting with a digit)")
        if name in KEYWORDS:
            raise ValueError("is a Rust keyword, which no variable can be named")

    @classmethod
    def codify(cls, parameters, comment="Parameters"):
        lines = [cls.comment(comment)]
        for name, val in parameters.items():
            try:
                cls.check_name(name)
                lines.append(cls.assign(name, cls.translate(val), cls.rust_type(val)))
            except ValueError as error:
                raise ValueError(f"papermill parameter {name!r} {error}") from None
        return "\n".join(lines) + "\n"

    @classmethod
    def inspect(cls, parameters_cell):
        """For `papermill --help-notebook`: the cell's `let name: Type = value; // help`."""
        found = (DECLARATION.fullmatch(line) for line in parameters_cell.source.splitlines())
        return [Parameter(name=m[1], inferred_type_name=m[2] or "None", default=m[3],
                          help=m[4] or "") for m in found if m]


papermill_translators.register("rust", RustTranslator)
