#!/usr/bin/env python3
"""Renders a chart like `helm template`, for exactly the subset of Helm's template language charts/kverify-demo
uses, so the chart can be tested where helm is not installed. Whatever is outside the subset is an error naming
file:line:column, never a guess: a wrong render would make the chart tests meaningless.

Usage: charts/render.py CHART_DIR [--set path=value]...

The subset:
  values.yaml  nested block mappings of scalars: plain strings, "double"/'single' quoted strings, integers,
               true/false; full-line and trailing comments. Scalars YAML 1.1 (helm's parser) would read as
               something else (yes, on, 1.5, 0x1F, 2024-01-01, ~) must be quoted.
  --set        a.b=value, one per flag, typed like helm: integer, true/false, else string.
  templates    text; {{ .Values.a.b }}; {{ quote .Values.a.b }}; {{ if eq|ne .Values.a "literal" }}…{{ end }};
               {{ fail "literal" }}; {{/* comment */}}; the trim markers {{- and -}}.
Stricter than helm: a missing value is an error (helm prints nothing). Files named _* are refused (no define or
include); NOTES.txt is skipped, as `helm template` skips it.

Output: each template whose render is not blank, as "---\\n# Source: CHART/templates/FILE\\n…", by file name
(helm orders by kind: compare objects, not order). Exit 0 rendered, 1 the chart failed to render (fail, a
missing value, a type error), 2 usage error or an unsupported construct. Stdlib only."""

import pathlib
import re
import sys


class RenderError(Exception):
    """The chart cannot render: `fail`, a missing value, a type error (exit 1)."""


class Unsupported(Exception):
    """Outside the subset this renderer implements, or a usage error (exit 2)."""


class FileNumber(int):
    """An integer from a values file: helm reads it as float64 and prints 1000000 as 1e+06."""


# ---------------------------------------------------------------------------------------------------------- values

# Plain scalars YAML 1.1 resolves to a bool, null, float, base-n integer or timestamp, and that helm would
# therefore not read as the string they look like.
YAML11_SPECIAL = re.compile(
    r"(?i:y|yes|n|no|on|off|true|false|null|~)"
    r"|[-+]?[0-9_.]*[0-9][0-9_.eE+-]*"
    r"|[-+]?0[xXoObB][0-9a-fA-F_]+"
    r"|[-+]?\.(?i:inf|nan)"
    r"|[0-9][0-9_]*(:[0-9_]+)+"
    r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?"
)
INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
PLAIN_STRING = re.compile(r"[A-Za-z0-9_/][A-Za-z0-9_./:@-]*")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def parse_scalar(text: str, where: str):
    """One scalar (and an optional trailing comment) from a values line."""
    if text.startswith('"'):
        value, rest = parse_double_quoted(text, where)
    elif text.startswith("'"):
        match = re.match(r"'((?:[^']|'')*)'", text)
        if not match:
            raise Unsupported(f"{where}: unterminated single-quoted string")
        value, rest = match.group(1).replace("''", "'"), text[match.end():]
    else:
        plain = re.split(r"\s+#", text, maxsplit=1)[0].rstrip()
        if INTEGER.fullmatch(plain):
            return FileNumber(int(plain))
        if plain in ("true", "false"):
            return plain == "true"
        if YAML11_SPECIAL.fullmatch(plain):
            raise Unsupported(f"{where}: '{plain}' is not a plain string to helm's YAML 1.1 parser; quote it")
        if not PLAIN_STRING.fullmatch(plain) or plain.endswith(":"):
            raise Unsupported(f"{where}: unsupported scalar '{plain}' (lists, flow collections, anchors, tags, "
                              "block scalars and plain strings with spaces or indicators are outside the subset; "
                              "quote strings)")
        return plain
    if rest.strip() and not rest.strip().startswith("#"):
        raise Unsupported(f"{where}: unexpected text after the quoted string: '{rest.strip()}'")
    return value


def parse_double_quoted(text: str, where: str) -> tuple[str, str]:
    """A "…" literal with only \\" and \\\\ escapes (values.yaml and template string literals)."""
    out, i = [], 1
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), text[i + 1:]
        if char == "\\":
            if i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
                continue
            raise Unsupported(f"{where}: unsupported escape in a double-quoted string (only \\\" and \\\\)")
        out.append(char)
        i += 1
    raise Unsupported(f"{where}: unterminated double-quoted string")


def parse_values(text: str, name: str) -> dict:
    root: dict = {}
    stack = [(0, root)]  # (indentation of this mapping's keys, mapping)
    pending = None  # (indentation, key, parent) of a "key:" line: a nested mapping must follow
    for number, line in enumerate(text.split("\n"), 1):
        where = f"{name}:{number}"
        content = line.strip()
        if not content or content.startswith("#"):
            continue
        if "\t" in line:
            raise Unsupported(f"{where}: tab in indentation")
        if content in ("---", "..."):
            raise Unsupported(f"{where}: document markers are outside the subset")
        indent = len(line) - len(line.lstrip(" "))
        if pending:
            pending_indent, pending_key, parent = pending
            if indent <= pending_indent:
                raise Unsupported(f"{where}: '{pending_key}:' has no value (null is outside the subset)")
            parent[pending_key] = {}
            stack.append((indent, parent[pending_key]))
            pending = None
        while stack[-1][0] > indent:
            stack.pop()
        if stack[-1][0] != indent:
            raise Unsupported(f"{where}: indentation {indent} matches no enclosing mapping")
        match = re.match(r"([^:\s]+):(?:\s+|$)", content)
        if not match or not KEY.fullmatch(match.group(1)):
            raise Unsupported(f"{where}: expected 'key: scalar' or 'key:' (lists and flow collections are outside "
                              "the subset)")
        key, rest = match.group(1), content[match.end():]
        mapping = stack[-1][1]
        if key in mapping:
            raise Unsupported(f"{where}: duplicate key '{key}'")
        if not rest or rest.startswith("#"):
            pending = (indent, key, mapping)
        else:
            mapping[key] = parse_scalar(rest, where)
    if pending:
        raise Unsupported(f"{name}: '{pending[1]}:' has no value (null is outside the subset)")
    return root


def apply_set(values: dict, assignment: str) -> None:
    """helm's --set for one a.b=value: integers and true/false are typed, anything else is a string."""
    key, sep, raw = assignment.partition("=")
    path = key.split(".")
    if not sep or not all(KEY.fullmatch(part) for part in path):
        raise Unsupported(f"--set {assignment}: expected path.to.key=value")
    if any(char in raw for char in ",[]{}\\") or raw.lower() == "null":
        raise Unsupported(f"--set {assignment}: lists, several keys in one --set, escapes and null are outside "
                          "the subset")
    if INTEGER.fullmatch(raw) and (raw == "0" or not raw.lstrip("-").startswith("0")):
        value = int(raw)
    elif raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        value = raw
    mapping = values
    for part in path[:-1]:
        child = mapping.setdefault(part, {})
        if not isinstance(child, dict):
            raise Unsupported(f"--set {assignment}: '{part}' is a scalar, not a mapping")
        mapping = child
    mapping[path[-1]] = value


# ------------------------------------------------------------------------------------------------------- templates

TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<field>\.Values(?:\.[A-Za-z_][A-Za-z0-9_]*)+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<close>-?}})
  | (?P<other>[^ \t\r\n"}]+|})
""", re.VERBOSE)


class Action:
    def __init__(self, words: list, where: str):
        self.words, self.where = words, where


class Template:
    """A parsed template: a list of str and Action, then nested into blocks by `build`."""

    def __init__(self, text: str, name: str):
        self.name = name
        self.items = self.lex(text)
        self.tree, rest = self.build(0, None)
        if rest != len(self.items):
            raise Unsupported(f"{self.items[rest].where}: 'end' without 'if'")

    def position(self, text: str, offset: int) -> str:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        return f"{self.name}:{line}:{column}"

    def lex(self, text: str) -> list:
        items: list = []
        pos, trim_next = 0, False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if start < 0:
                items.append(chunk)
                return items
            where = self.position(text, start)
            i = start + 2
            if re.match(r"-[ \t\r\n]", text[i:i + 2]):
                chunk = chunk.rstrip(" \t\r\n")
                i += 2
            items.append(chunk)
            if text.startswith("/*", i):
                end = text.find("*/", i + 2)
                if end < 0:
                    raise Unsupported(f"{where}: unterminated comment")
                closing = re.match(r"( -)?}}", text[end + 2:])
                if not closing:
                    raise Unsupported(f"{where}: a comment must end right before }} or -}}")
                trim_next = bool(closing.group(1))
                pos = end + 2 + closing.end()
                continue
            words = []
            while True:
                match = TOKEN.match(text, i)
                if not match:
                    raise Unsupported(f"{where}: unterminated action or string at '{text[i:i + 20]}'")
                i = match.end()
                kind = match.lastgroup
                if kind == "close":
                    if match.group().startswith("-") and not re.match(r"[ \t\r\n]", text[match.start() - 1]):
                        raise Unsupported(f"{where}: a trim marker needs a space before it: ' -}}'")
                    trim_next = match.group().startswith("-")
                    break
                if kind == "string":
                    value, _ = parse_double_quoted(match.group(), where)
                    words.append(("string", value))
                elif kind != "space":
                    words.append((kind, match.group()))
            items.append(Action(words, where))
            pos = i

    def build(self, index: int, opener):
        """Nests `if … end` blocks; returns (nodes, index after the matching end)."""
        nodes: list = []
        while index < len(self.items):
            item = self.items[index]
            index += 1
            if isinstance(item, str):
                nodes.append(item)
                continue
            words = item.words
            if words == [("ident", "end")]:
                if opener is None:
                    raise Unsupported(f"{item.where}: 'end' without 'if'")
                return nodes, index
            if words[:1] == [("ident", "if")]:
                condition = words[1:]
                if (len(condition) != 3 or condition[0] not in (("ident", "eq"), ("ident", "ne"))
                        or condition[1][0] != "field" or condition[2][0] != "string"):
                    raise Unsupported(f"{item.where}: unsupported condition {describe(condition)}: only "
                                      "'if eq|ne .Values.path \"literal\"' (no else)")
                body, index = self.build(index, item)
                nodes.append(("if", item, body))
                continue
            if words and words[0] == ("ident", "else"):
                raise Unsupported(f"{item.where}: 'else' is outside the subset")
            if len(words) == 1 and words[0][0] == "field":
                nodes.append(("value", item))
            elif len(words) == 2 and words[0] == ("ident", "quote") and words[1][0] in ("field", "string"):
                nodes.append(("quote", item))
            elif len(words) == 2 and words[0] == ("ident", "fail") and words[1][0] == "string":
                nodes.append(("fail", item))
            else:
                raise Unsupported(f"{item.where}: unsupported action {{{{ {describe(words)} }}}} (the subset: "
                                  ".Values paths, \"strings\", quote, if eq|ne, end, fail, comments)")
        if opener is not None:
            raise Unsupported(f"{opener.where}: 'if' without 'end'")
        return nodes, index

    def render(self, values: dict) -> str:
        return "".join(self.run(self.tree, values))

    def run(self, nodes: list, values: dict):
        for node in nodes:
            if isinstance(node, str):
                yield node
                continue
            kind, action = node[0], node[1]
            words = action.words
            if kind == "if":
                value = lookup(values, words[2][1], action.where)
                if not isinstance(value, str):
                    raise RenderError(f"{action.where}: {words[2][1]} is {type_name(value)}; "
                                      f"{words[1][1]} compares it with a string")
                if (value == words[3][1]) == (words[1][1] == "eq"):
                    yield from self.run(node[2], values)
            elif kind == "value":
                yield text_of(lookup(values, words[0][1], action.where), action.where)
            elif kind == "quote":
                argument = words[1]
                value = argument[1] if argument[0] == "string" else lookup(values, argument[1], action.where)
                yield go_quote(text_of(value, action.where), action.where)
            elif kind == "fail":
                raise RenderError(f"{action.where}: fail: {words[1][1]}")


def describe(words: list) -> str:
    return " ".join(f'"{value}"' if kind == "string" else value for kind, value in words) or "(empty)"


def lookup(values: dict, field: str, where: str):
    value = values
    for part in field.split(".")[2:]:
        if not isinstance(value, dict) or part not in value:
            raise RenderError(f"{where}: {field} is not set (helm would print nothing here)")
        value = value[part]
    return value


def type_name(value) -> str:
    return {bool: "a bool", dict: "a mapping", str: "a string"}.get(type(value), "a number")


def text_of(value, where: str) -> str:
    """What Go's text/template prints for the value, as helm passes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, FileNumber) and abs(value) >= 1_000_000:
        raise Unsupported(f"{where}: {value} comes from a values file as a float64, which helm prints in "
                          "exponent form; quote it or set it with --set")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    raise RenderError(f"{where}: the value is a mapping, not a scalar")


def go_quote(text: str, where: str) -> str:
    """Sprig's quote (Go's %q) for printable ASCII, where it agrees with a YAML double-quoted scalar."""
    if any(not " " <= char <= "~" for char in text):
        raise Unsupported(f"{where}: quote of non-printable or non-ASCII text is outside the subset")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ------------------------------------------------------------------------------------------------------------ main

def render_chart(chart: pathlib.Path, sets: list[str]) -> str:
    chart_yaml = (chart / "Chart.yaml").read_text()
    name = re.search(r"^name:\s*(\S+)\s*$", chart_yaml, re.MULTILINE)
    if not name:
        raise Unsupported(f"{chart}/Chart.yaml: no name")
    values = parse_values((chart / "values.yaml").read_text(), "values.yaml")
    for assignment in sets:
        apply_set(values, assignment)
    out = []
    for path in sorted((chart / "templates").iterdir()):
        if path.name == "NOTES.txt":
            continue
        relative = f"templates/{path.name}"
        if path.name.startswith("_") or not path.is_file():
            raise Unsupported(f"{relative}: partials and subdirectories are outside the subset")
        rendered = Template(path.read_text(), relative).render(values)
        if rendered.strip():
            out.append(f"---\n# Source: {name.group(1)}/{relative}\n{rendered.strip(chr(10))}\n")
    return "".join(out)


def main(arguments: list[str]) -> int:
    try:
        if not arguments or arguments[0].startswith("-"):
            raise Unsupported("usage: charts/render.py CHART_DIR [--set path=value]...")
        chart, sets, rest = pathlib.Path(arguments[0]), [], arguments[1:]
        while rest:
            if rest[0] == "--set" and len(rest) > 1:
                sets.append(rest[1])
                rest = rest[2:]
            else:
                raise Unsupported(f"unsupported argument '{rest[0]}' (only --set path=value)")
        sys.stdout.write(render_chart(chart, sets))
        return 0
    except RenderError as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 1
    except (Unsupported, OSError) as error:
        print(f"render.py: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
