"""Reading YAML a user wrote (study files, dashboard definitions, ``--set`` values).

One hardened loader for all of them: PyYAML's safe loader (no Python objects) with
limits, so that no file, however hostile, gets further than one line of error:

* a file larger than :data:`MAX_FILE_BYTES` (1 MiB) is refused before it is parsed
  (PyYAML's pure-Python parser reads about 0.1 to 0.5 MB a second);
* nesting deeper than :data:`MAX_DEPTH` (100 levels) is refused while composing,
  before Python's recursion limit is near; so is nesting that deep once aliases are
  expanded;
* a document of more than :data:`MAX_NODES` (200,000) values, counting each alias as
  the copy it stands for, is refused (a "billion laughs" alias bomb is cheap for PyYAML,
  which shares the objects, but not for what walks them afterwards: validation,
  copies, JSON); so is a recursive alias (``&a [*a]``);
* an integer longer than :data:`MAX_INT_DIGITS` (100) digits is refused (Python
  refuses to convert more than 4,300 and cannot turn more than 309 into a float);
* bytes that are not UTF-8 text, NUL bytes, directories, named pipes and devices are
  refused with a message saying so.

Every refusal is a :class:`~hpsearch.exceptions.ConfigError`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from hpsearch.exceptions import ConfigError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "HardenedLoader",
    "PureHardenedLoader",
    "Refused",
    "check_text_size",
    "describe_yaml_error",
    "load_yaml_text",
    "parse_yaml",
    "read_yaml_file",
]

MAX_FILE_BYTES = 1 << 20
"""Largest file read: 1 MiB (the shipped study files are a few kilobytes)."""
MAX_DEPTH = 100
"""Deepest nesting of lists and mappings (a study file needs five or six levels)."""
MAX_NODES = 200_000
"""Most values in one document, each alias counted as a copy of what it names
(a 1 MiB file of enqueued trials holds about 150,000)."""
MAX_INT_DIGITS = 100
"""Longest integer, in digits."""


class Refused(yaml.MarkedYAMLError):
    """Well-formed YAML the loader refuses: beyond one of its limits, or not text."""


class _LimitedComposer(Composer):
    """PyYAML's composer with the limits of this module.

    While composing it tracks, for every finished node, how many values it stands for
    with its aliases expanded and how deep it nests then (memoized per node, so an
    alias bomb costs linear time), and refuses an alias to a node that is not finished
    yet: the node contains the alias, a cycle.
    """

    kind = "study file"

    def _start_limits(self, kind: str) -> None:
        self.kind = kind
        self._depth = 0
        self._composed = 0
        self._stats: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth)

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            node: Node = super().compose_node(parent, index)  # an undefined alias raises
            if id(node) not in self._stats:
                raise Refused(
                    None,
                    None,
                    f"recursive alias *{event.anchor}: it is inside the node it refers to",
                    event.start_mark,
                )
            return node
        self._depth += 1
        self._composed += 1
        if self._depth > MAX_DEPTH:
            raise Refused(
                None,
                None,
                f"nested deeper than {MAX_DEPTH} levels, the limit for a {self.kind}",
                event.start_mark,
            )
        if self._composed > MAX_NODES:
            raise Refused(
                None,
                None,
                f"more than {MAX_NODES:,} values, the limit for a {self.kind}",
                event.start_mark,
            )
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._measure(node)
        return node

    def _measure(self, node: Node) -> None:
        children: list[Node]
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
            _check_text(node)
        size, depth = 1, 1
        for child in children:
            child_size, child_depth = self._stats[id(child)]
            size += child_size
            depth = max(depth, child_depth + 1)
        if size > MAX_NODES:
            raise Refused(
                None,
                None,
                f"more than {MAX_NODES:,} values once aliases are expanded, the limit for a "
                f"{self.kind}",
                node.start_mark,
            )
        if depth > MAX_DEPTH:
            raise Refused(
                None,
                None,
                f"nested deeper than {MAX_DEPTH} levels once aliases are expanded, the limit "
                f"for a {self.kind}",
                node.start_mark,
            )
        self._stats[id(node)] = (size, depth)


class _SafeConstructor(SafeConstructor):
    """PyYAML's safe constructor; a value it cannot build is a ConstructorError."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # e.g. !!timestamp 2024-13-01
            raise ConstructorError(
                None, None, f"{node.tag.rpartition(':')[2]}: {_one_line(exc)}", node.start_mark
            ) from None

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = str(node.value)
        digits = len(text.replace("_", "").lstrip("+-"))
        if digits > MAX_INT_DIGITS:
            raise Refused(
                None,
                None,
                f"an integer of {digits:,} digits; the limit is {MAX_INT_DIGITS}",
                node.start_mark,
            )
        try:
            return int(super().construct_yaml_int(node))
        except (ValueError, OverflowError) as exc:
            raise ConstructorError(None, None, _one_line(exc), node.start_mark) from None


_SafeConstructor.add_constructor("tag:yaml.org,2002:int", _SafeConstructor.construct_yaml_int)


class PureHardenedLoader(Reader, Scanner, Parser, _LimitedComposer, _SafeConstructor, Resolver):
    """``yaml.SafeLoader`` with the limits of this module, all in Python."""

    def __init__(self, stream: str | bytes, kind: str = "study file") -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _LimitedComposer.__init__(self)
        _SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._start_limits(kind)


HardenedLoader: type[PureHardenedLoader] | type[Any] = PureHardenedLoader
"""The loader :func:`parse_yaml` uses: libyaml's parser (C, several times faster)
under the limited composer when PyYAML has it, else :class:`PureHardenedLoader`."""

if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser

    class CHardenedLoader(_LimitedComposer, CParser, _SafeConstructor, Resolver):
        """libyaml scans and parses (events); the nodes are composed in Python, with the
        limits. The composer comes first: its methods, not CParser's, build the nodes."""

        def __init__(self, stream: str | bytes, kind: str = "study file") -> None:
            CParser.__init__(self, stream)
            _LimitedComposer.__init__(self)
            _SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start_limits(kind)

    HardenedLoader = CHardenedLoader


def _check_text(node: Node) -> None:
    """Refuse a scalar that is not Unicode text: a lone surrogate from an escape like
    ``"\\ud800"`` can be neither printed nor stored."""
    value = node.value
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Refused(
                None,
                None,
                f"{value[exc.start]!r} is not a character (a lone surrogate); escapes must "
                "give Unicode text",
                node.start_mark,
            ) from None


def parse_yaml(text: str | bytes, kind: str = "study file") -> Any:
    """One YAML document through :class:`HardenedLoader`.

    Raises:
        Refused: beyond a limit.
        yaml.YAMLError: malformed YAML.
    """
    loader = HardenedLoader(text, kind)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def describe_yaml_error(exc: BaseException, text: str | None = None) -> str:
    """The message for an error of :func:`parse_yaml`: where, and what is wrong."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or str(exc).splitlines()[0]
        if isinstance(exc, Refused):
            return f"{where}{problem}"
        return f"{where}malformed YAML: {_one_line(problem)}"
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character
        code = ord(char) if isinstance(char, str) else int(char)
        where = ""
        at = text.find(chr(code)) if text is not None else -1  # the first one stops the reader
        if text is not None and at >= 0:
            before = text[:at]
            where = f"line {before.count(chr(10)) + 1}, column {at - before.rfind(chr(10))}: "
        return f"{where}malformed YAML: unacceptable character #x{code:04x}: {exc.reason}"
    if isinstance(exc, yaml.YAMLError):
        return f"malformed YAML: {_one_line(exc)}"
    if isinstance(exc, RecursionError):
        return f"nested too deeply to read (the limit is {MAX_DEPTH} levels)"
    if isinstance(exc, MemoryError):
        return "too large to read: out of memory"
    return f"cannot be read as YAML: {type(exc).__name__}: {_one_line(exc)}"


def check_text_size(text: str, kind: str) -> None:
    """Refuse text longer than MAX_FILE_BYTES in UTF-8 (ConfigError, without a source)."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {_size(MAX_FILE_BYTES)}, the limit for a {kind}")


def load_yaml_text(text: str, *, kind: str = "study file") -> Any:
    """Parse ``text``; every failure is a ConfigError (without a source)."""
    check_text_size(text, kind)
    try:
        return parse_yaml(text, kind)
    except (yaml.YAMLError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise ConfigError(describe_yaml_error(exc, text)) from None


def read_yaml_file(source: Path, label: str, kind: str) -> Any:
    """Read and parse a YAML file a user gave; every failure is a ConfigError naming it.

    Args:
        source: the file.
        label: its name as the user gave it, for messages.
        kind: what it is, e.g. "study file".
    """
    data = _read_bytes(source, label, kind)
    text = _decode(data, label)
    try:
        return load_yaml_text(text, kind=kind)
    except ConfigError as exc:
        raise exc.with_source(label) from None


def _read_bytes(source: Path, label: str, kind: str) -> bytes:
    """At most MAX_FILE_BYTES of a regular file; never blocks on a pipe."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(source, flags)
    except FileNotFoundError:
        raise ConfigError(f"{kind} not found", source=label) from None
    except IsADirectoryError:
        raise ConfigError(f"cannot read the {kind}: it is a directory", source=label) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind}: {_os_reason(exc)}", source=label) from None
    except ValueError as exc:  # a NUL character in the path
        raise ConfigError(f"cannot read the {kind}: {_one_line(exc)}", source=label) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(
                f"cannot read the {kind}: it is {_file_type(info.st_mode)}, not a file",
                source=label,
            )
        if info.st_size > MAX_FILE_BYTES:
            raise ConfigError(_too_large(info.st_size, kind), source=label)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_FILE_BYTES:
            chunk = os.read(fd, MAX_FILE_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_FILE_BYTES:  # it grew since fstat
            raise ConfigError(_too_large(total, kind, at_least=True), source=label)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"cannot read the {kind}: {_os_reason(exc)}", source=label) from None
    finally:
        os.close(fd)


_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xfe\xff", "UTF-16"),
    (b"\xff\xfe", "UTF-16"),
)


def _decode(data: bytes, label: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            raise ConfigError(
                f"the file is {encoding} text (it starts with a {encoding} byte order mark); "
                "save it as UTF-8",
                source=label,
            )
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise ConfigError(
            f"line {line}: a NUL byte; this is a binary file, not YAML text", source=label
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; "
            "is this a binary file? (save text as UTF-8)",
            source=label,
        ) from None


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.EACCES or isinstance(exc, PermissionError):
        return "permission denied"
    return _one_line(exc.strerror or exc)


def _size(n: int) -> str:
    return f"{n / (1 << 20):g} MiB" if n >= 1 << 20 else f"{n:,} bytes"


def _too_large(size: int, kind: str, *, at_least: bool = False) -> str:
    return (
        f"the file is {'over ' if at_least else ''}{size:,} bytes; a {kind} may have up to "
        f"{_size(MAX_FILE_BYTES)}"
    )


def _one_line(value: object, limit: int = 300) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
