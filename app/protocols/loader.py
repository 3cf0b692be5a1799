"""Load a protocol file, failing closed.

Anything short of a fully valid protocol raises :class:`ProtocolError` listing every issue found,
each with its file, the dotted path inside the document (``rules[3].when.any[0].unit``), the
1-based YAML line of that node and a message a protocol author can act on: YAML syntax errors,
duplicate keys (which plain YAML would silently resolve to the last one), unknown keys, wrong
types, out-of-range values and cross-reference errors.
"""

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from app.protocols import schema
from app.protocols.schema import (
    CROSS_REFERENCE_COLLECTOR,
    CrossReferenceProblem,
    Loc,
    Protocol,
)
from app.wording import with_article

DOCUMENT = "<document>"  # the path of issues about the file as a whole


@dataclass(frozen=True)
class ProtocolIssue:
    source: str  # file name or path
    path: str  # dotted path inside the document, e.g. rules[3].when.any[0].unit
    line: int | None  # 1-based YAML line of that node, when it can be found
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.path}: {self.message}"


class ProtocolError(Exception):
    """A protocol that must not be used; ``issues`` says everything that is wrong with it."""

    def __init__(self, issues: list[ProtocolIssue]) -> None:
        super().__init__(issues)
        self.issues = list(issues)

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)


@dataclass(frozen=True)
class LoadedProtocol:
    protocol: Protocol
    sha256: str  # hex SHA-256 of the exact file bytes (the source text encoded as UTF-8)
    source_text: str
    source: str


def load_protocol_file(path: str | Path) -> LoadedProtocol:
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProtocolError(
            [ProtocolIssue(source, DOCUMENT, None, "no such protocol file")]
        ) from None
    except OSError as exc:
        message = f"cannot read protocol file: {exc.strerror or exc}"
        raise ProtocolError([ProtocolIssue(source, DOCUMENT, None, message)]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = f"the file is not UTF-8 text (byte {exc.start}: {exc.reason})"
        raise ProtocolError([ProtocolIssue(source, DOCUMENT, line, message)]) from None
    # Strict UTF-8 decoding round-trips, so the hash of the text is the hash of the file bytes.
    return parse_protocol_text(text, source)


def parse_protocol_text(text: str, source: str = "<string>") -> LoadedProtocol:
    try:
        sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    except UnicodeEncodeError as exc:
        raise ProtocolError(
            [ProtocolIssue(source, DOCUMENT, None, f"text is not encodable as UTF-8: {exc.reason}")]
        ) from None
    root, data, issues = _parse_yaml(text, source)
    problems: list[CrossReferenceProblem] = []
    try:
        protocol = Protocol.model_validate(data, context={CROSS_REFERENCE_COLLECTOR: problems})
    except ValidationError as exc:
        for error in exc.errors():
            loc = error["loc"]
            if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
                # point at the discriminator itself (a rule's `kind`), not the whole rule
                loc = (*loc, str((error.get("ctx") or {}).get("discriminator", "")).strip("'"))
            path, line, node = _locate(root, loc)
            issues.append(ProtocolIssue(source, path, line, _message(error, node)))
    else:
        for problem in problems:
            path, line, _ = _locate(root, problem.loc)
            issues.append(ProtocolIssue(source, path, line, problem.message))
    if issues:
        raise ProtocolError(sorted(issues, key=lambda issue: issue.line or 0))
    return LoadedProtocol(protocol=protocol, sha256=sha256, source_text=text, source=source)


# --- YAML ---------------------------------------------------------------------------------------


def _parse_yaml(text: str, source: str) -> tuple[yaml.Node, Any, list[ProtocolIssue]]:
    """The composed node tree (for line numbers), the data, and any duplicate-key issues."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ProtocolError([ProtocolIssue(source, DOCUMENT, None, "the file is empty")])
        # Duplicate keys are checked on the composed tree before construction, which would
        # keep only the last value (and flattens `<<` merge keys in place).
        duplicates = _duplicate_key_issues(root, source)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        raise ProtocolError([_syntax_issue(exc, source)]) from None
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise ProtocolError([ProtocolIssue(source, DOCUMENT, None, f"YAML error: {exc}")]) from None
    finally:
        loader.dispose()
    return root, data, duplicates


def _syntax_issue(exc: yaml.MarkedYAMLError, source: str) -> ProtocolIssue:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = f" (column {mark.column + 1})" if mark is not None else ""
    message = f"YAML syntax error{column}: {exc.problem or exc.context or 'unreadable YAML'}"
    if exc.problem and exc.context:
        context_line = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{context_line})"
    return ProtocolIssue(source, DOCUMENT, line, message)


def _duplicate_key_issues(root: yaml.Node, source: str) -> list[ProtocolIssue]:
    issues: list[ProtocolIssue] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen_nodes:  # aliases may repeat (or nest) a node
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                child = f"{path}.{key}" if path else key
                if key in first_line:
                    issues.append(
                        ProtocolIssue(
                            source,
                            child,
                            line,
                            f"duplicate key {key!r} (first at line {first_line[key]}); "
                            "YAML would silently keep only the last one",
                        )
                    )
                else:
                    first_line[key] = line
                walk(value_node, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, f"{path}[{index}]")

    walk(root, "")
    return issues


# --- locating and explaining validation errors --------------------------------------------------


def _entry(mapping: yaml.MappingNode, key: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    """The key and value nodes of ``key`` (the last one, as YAML construction keeps)."""
    for key_node, value_node in reversed(mapping.value):
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(key):
            return key_node, value_node
    return None


def _is_discriminator_tag(mapping: yaml.MappingNode, item: str) -> bool:
    """pydantic puts the tag of a discriminated union (a rule's ``kind``) into the location."""
    entry = _entry(mapping, "kind")
    return entry is not None and isinstance(entry[1], yaml.ScalarNode) and entry[1].value == item


def _format_path(parts: list[str | int]) -> str:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts)
    return path.lstrip(".") or DOCUMENT


def _locate(root: yaml.Node, loc: Loc) -> tuple[str, int | None, yaml.Node | None]:
    """A pydantic location as a dotted path, the line of the deepest node found, and the node
    itself when the whole location was found."""
    parts: list[str | int] = []
    node: yaml.Node | None = root
    line = root.start_mark.line + 1
    for item in loc:
        if item == "[key]":  # pydantic's marker for "the key itself", already in the path
            continue
        if isinstance(node, yaml.MappingNode):
            entry = _entry(node, item)
            if entry is None and isinstance(item, str) and _is_discriminator_tag(node, item):
                continue
            parts.append(str(item))  # a mapping key, even where YAML read it as a number
            if entry is None:  # a missing field: the line of the mapping that lacks it
                node = None
                continue
            key_node, node = entry
            line = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(item, int):
            parts.append(item)
            if not 0 <= item < len(node.value):
                node = None
                continue
            node = node.value[item]
            line = node.start_mark.line + 1
        else:
            parts.append(item if isinstance(item, int) else str(item))
            node = None
    return _format_path(parts), line, node


def _schema_field_names() -> list[str]:
    names: set[str] = set()
    for value in vars(schema).values():
        if isinstance(value, type) and issubclass(value, BaseModel):
            names.update(value.model_fields)
    return sorted(names)


_FIELD_NAMES = _schema_field_names()


def _show(value: object) -> str:
    """A value as the YAML author wrote it, near enough."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _message(error: ErrorDetails, node: yaml.Node | None) -> str:
    kind, loc, ctx = error["type"], error["loc"], error.get("ctx") or {}
    if kind == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        # a key known in another section (trial.sponsor under protocol) is no typo of itself
        others = [name for name in _FIELD_NAMES if name != key]
        close = difflib.get_close_matches(key, others, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown key {key!r}{hint} (unknown keys are errors, never ignored)"
    if kind == "union_tag_invalid":
        tag, expected = str(ctx.get("tag")), str(ctx.get("expected_tags"))
        close = difflib.get_close_matches(tag, [t.strip(" '") for t in expected.split(",")], n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown kind {tag!r}; {hint}expected one of {expected}"
    if kind == "union_tag_not_found":
        return "missing required field 'kind'"
    message = error["msg"][:1].lower() + error["msg"][1:]
    value = error.get("input")
    if kind == "string_type" and value is not None and isinstance(node, yaml.ScalarNode):
        # `version: 1.10` is the number 1.1 and `title: yes` is true: say so, and how to fix it
        kinds = {bool: "a boolean", int: "a number", float: "a number"}
        read_as = kinds.get(type(value), with_article(type(value).__name__))
        return f'{message}: YAML reads {node.value} as {read_as}; quote it ("{node.value}")'
    if isinstance(value, str | int | float | bool) or value is None:
        return f"{message}, got {_show(value)}"
    return message
