"""Read what the user wrote: ``.env``, the YAML file, ``${VAR}``, ``GW__`` overrides.

    loaded = load("config.yaml", os.environ)
    loaded.raw["server"]["port"]          # 8080, or GW__SERVER__PORT's value

The result is still untyped (``schema.parse`` checks it). ``load`` raises
``ConfigError`` only when there is nothing to parse (file missing, broken YAML,
top level not a mapping); every other problem (an unset ``${VAR}``, a bad
``.env`` line, a bad ``GW__`` variable) rides along in ``Loaded.problems`` so
that ``parse`` reports it together with its own, and the user fixes all at once.
``Loaded`` also remembers where values came from (``${VAR}``, ``GW__``), so a
message can say why a key is empty: "OPENAI_API_KEY is not set".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import yaml

from gw.errors import ConfigError

Path: TypeAlias = tuple[str | int, ...]

OVERRIDE_PREFIX = "GW__"


class Expanded(str):
    """A string scalar that came out of ``${VAR}`` expansion.

    The schema may read it as a number or a bool (``port: ${PORT:-8080}``,
    ``enabled: ${OLLAMA_ENABLED:-false}``), which it never does for a string the
    file wrote literally (``port: "8080"`` stays an error).
    """

    __slots__ = ()


class Unresolved:
    """Stands where a ``${VAR}`` could not be expanded; already reported, so the
    schema skips it instead of adding a second, confusing problem."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<unresolved>"


UNRESOLVED = Unresolved()


@dataclass(frozen=True, slots=True)
class Override:
    """One ``GW__`` variable: its name and its text before YAML parsing."""

    var: str
    text: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class EnvRef:
    """A ``${VAR}`` a key's value was expanded from: the name and whether it had
    a value (never the value itself, which may be a secret)."""

    var: str
    is_set: bool
    empty: bool = False

    def __str__(self) -> str:
        """``OPENAI_API_KEY is not set``, ``... is empty`` or ``set by ...``."""
        if not self.is_set:
            return f"{self.var} is not set"
        return f"{self.var} is empty" if self.empty else f"set by {self.var}"


@dataclass(frozen=True, slots=True)
class Loaded:
    source: str  # the config path as given: the FILE of every problem line
    raw: dict[str, Any] = field(repr=False)  # may hold secrets
    # key path -> the GW__ variable that set it (for "set by ..." in messages)
    overrides: Mapping[Path, Override] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    # key path -> the ${VAR}s its string was expanded from, in order
    env_refs: Mapping[Path, tuple[EnvRef, ...]] = field(default_factory=dict)


def format_path(path: Path) -> str:
    """("models", "gpt-4o", "targets", 1, "provider") -> models.gpt-4o.targets[1].provider"""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out += f".{seg}" if out else str(seg)
    return out


def problem(source: str, path: Path, message: str) -> str:
    return f"{source}: {format_path(path)}: {message}" if path else f"{source}: {message}"


# --- .env -------------------------------------------------------------------

_DOTENV_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_DQ_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def read_dotenv(path: str | os.PathLike[str]) -> tuple[dict[str, str], list[str]]:
    """Parse a ``.env`` file: ``KEY=VALUE``, ``export KEY=VALUE``, ``# comments``,
    'single' (literal) or "double" (``\\n``, ``\\"``, ``\\\\`` escapes) quoted values.
    A missing file is an empty one. Returns (variables, problems)."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as exc:
        return {}, [f"{name}: cannot read: {exc.__class__.__name__}"]
    values: dict[str, str] = {}
    problems: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _DOTENV_LINE.match(stripped)
        if m is None:
            # never echo the line: it may hold a secret
            problems.append(f"{name}: line {lineno}: expected KEY=VALUE")
            continue
        key, rest = m.group(1), m.group(2)
        value = _dotenv_value(rest)
        if value is None:
            problems.append(f"{name}: line {lineno}: {key}: unterminated quoted value")
            continue
        values[key] = value
    return values, problems


def _dotenv_value(rest: str) -> str | None:
    if rest[:1] == "'":
        end = rest.find("'", 1)
        return None if end < 0 else rest[1:end]
    if rest[:1] == '"':
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                out.append(_DQ_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if ch == '"':
                return "".join(out)
            out.append(ch)
            i += 1
        return None
    # unquoted: a " #" starts a comment
    m = re.search(r"\s#", rest)
    return (rest[: m.start()] if m else rest).strip()


def merged_environ(
    environ: Mapping[str, str] | None, dotenv: str | os.PathLike[str] | None
) -> tuple[dict[str, str], list[str]]:
    """A copy of ``environ`` (default ``os.environ``) plus the ``.env`` variables it
    does not already have: the real environment always wins."""
    env = dict(os.environ if environ is None else environ)
    if dotenv is None:
        return env, []
    values, problems = read_dotenv(dotenv)
    for key, value in values.items():
        env.setdefault(key, value)
    return env, problems


# --- ${VAR} -----------------------------------------------------------------

# $${ is a literal ${; ${NAME} and ${NAME:-default}; any other ${ is malformed.
_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def expand_string(value: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
    """Expand ``${VAR}`` / ``${VAR:-default}`` (default when unset or empty, as in
    the shell) and ``$${`` -> ``${``. Returns (text, problems without the path)."""
    if "${" not in value:
        return value, []
    problems: list[str] = []
    substituted = False

    def sub(m: re.Match[str]) -> str:
        nonlocal substituted
        text = m.group(0)
        if text == "$${":
            return "${"
        name = m.group(1)
        if name is None:
            problems.append(
                f"malformed ${{...}} at character {m.start() + 1} "
                "(expected ${NAME} or ${NAME:-default}; write $${ for a literal ${)"
            )
            return ""
        substituted = True
        default = m.group(2)
        current = env.get(name)
        if default is not None:
            return current if current else default
        if current is None:
            problems.append(f"${{{name}}} is not set")
            return ""
        return current

    out = _REF.sub(sub, value)
    return (Expanded(out) if substituted else out), problems


def env_refs(value: str, env: Mapping[str, str]) -> tuple[EnvRef, ...]:
    """The ``${VAR}`` references in ``value`` (``$${`` escapes excluded) and whether each VAR had a value."""
    refs = []
    for m in _REF.finditer(value):
        name = m.group(1)
        if name is not None:
            current = env.get(name)
            refs.append(EnvRef(name, is_set=current is not None, empty=current == ""))
    return tuple(refs)


def _expand(
    node: Any,
    path: Path,
    env: Mapping[str, str],
    skip: set[Path],
    out: list[tuple[Path, str]],
    refs: dict[Path, tuple[EnvRef, ...]],
) -> Any:
    if path in skip:  # set by a GW__ variable: taken as is
        return node
    if isinstance(node, str):
        text, problems = expand_string(node, env)
        if problems:
            out.extend((path, p) for p in problems)
            return UNRESOLVED
        if isinstance(text, Expanded):
            refs[path] = env_refs(node, env)
        return text
    if isinstance(node, dict):
        return {k: _expand(v, path + (str(k),), env, skip, out, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v, path + (i,), env, skip, out, refs) for i, v in enumerate(node)]
    return node


# --- GW__SECTION__KEY -------------------------------------------------------


def _norm(segment: str) -> str:
    return segment.lower().replace("-", "_")


def _apply_overrides(
    raw: dict[str, Any], env: Mapping[str, str], source: str
) -> tuple[dict[Path, Override], list[str]]:
    """Set ``GW__A__B=value`` at ``a.b``: segments match existing keys ignoring case,
    ``_`` matching ``-``; a segment matching none creates a lowercased key; a digit
    segment indexes a list. Shallow variables apply first, so
    ``GW__SERVER__PORT`` wins over a ``port`` inside ``GW__SERVER``."""
    names = [k for k in env if k.startswith(OVERRIDE_PREFIX)]
    names.sort(key=lambda k: (k.count("__"), k))
    applied: dict[Path, Override] = {}
    problems: list[str] = []
    for var in names:
        segments = var[len(OVERRIDE_PREFIX) :].split("__")
        if not all(segments):
            problems.append(f"{source}: {var}: empty key segment in override variable")
            continue
        text = env[var]
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            what = getattr(exc, "problem", None) or "invalid YAML"
            problems.append(f"{source}: {var}: value is not valid YAML: {what}")
            continue
        node: Any = raw
        path: list[str | int] = []
        for i, seg in enumerate(segments):
            last = i == len(segments) - 1
            if isinstance(node, list):
                if not seg.isdigit() or int(seg) >= len(node):
                    problems.append(
                        f"{source}: {format_path(tuple(path))}: {var}: "
                        f"no item {seg} in this list of {len(node)}"
                    )
                    break
                key: str | int = int(seg)
            elif isinstance(node, dict):
                exact = [k for k in node if isinstance(k, str) and k.lower() == seg.lower()]
                loose = [k for k in node if isinstance(k, str) and _norm(k) == _norm(seg)]
                key = (exact or loose or [seg.lower()])[0]
            else:
                where = format_path(tuple(path))
                problems.append(f"{source}: {where}: {var}: cannot set a key inside it, it is not a mapping")
                break
            path.append(key)
            if last:
                node[key] = value
                applied[tuple(path)] = Override(var, text)
                break
            child = node.get(key) if isinstance(node, dict) else node[key]
            if child is None:  # absent or null section: create it
                child = {}
                node[key] = child
            node = child
    return applied, problems


# --- the whole step ---------------------------------------------------------


def load(
    path: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
) -> Loaded:
    """Read ``path`` with ``.env`` (``dotenv``, None to skip) merged under
    ``environ`` (default ``os.environ``, never modified), expand ``${VAR}`` and
    apply ``GW__`` overrides (not expanded). Precedence: GW__ > file."""
    source = os.fspath(path)
    env, env_problems = merged_environ(environ, dotenv)
    try:
        with open(source, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError([*env_problems, f"{source}: file not found"]) from None
    except IsADirectoryError:
        raise ConfigError([*env_problems, f"{source}: is a directory, not a file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([*env_problems, f"{source}: cannot read: {exc.__class__.__name__}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([*env_problems, _yaml_problem(source, exc)]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [*env_problems, f"{source}: expected a mapping at the top level, got {describe_value(data)}"]
        )

    overrides, override_problems = _apply_overrides(data, env, source)
    found: list[tuple[Path, str]] = []
    refs: dict[Path, tuple[EnvRef, ...]] = {}
    raw = _expand(data, (), env, set(overrides), found, refs)
    problems = [*env_problems, *(problem(source, p, m) for p, m in found), *override_problems]
    return Loaded(source=source, raw=raw, overrides=overrides, problems=tuple(problems), env_refs=refs)


def _yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    # Only the problem and its position: str(exc) quotes the line, which may be a secret.
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    what = getattr(exc, "problem", None) or "invalid YAML"
    if mark is not None:
        return f"{source}: line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {what}"
    return f"{source}: invalid YAML: {what}"


def describe_value(value: Any) -> str:
    """How a message shows a value found where another was expected."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(str(value))
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
