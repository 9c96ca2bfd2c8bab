"""Strict validation of rule files against the shipped JSON Schema, with readable errors.

The schema (``graphtool/lang/schema.json``) is the single definition of the
format: editors use it through yaml-language-server and this module uses it to
check files.  Raw jsonschema messages are long and point nowhere, so the first
error is rewritten as one line that names the rule and key, says what was
expected, suggests close key names and carries ``file:line:column``.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib import resources

from graphtool.errors import did_you_mean
from graphtool.lang.source import SourceMap

_TYPE_WORDS = {
    "string": "a string", "integer": "an integer", "number": "a number",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "empty",
}


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """The rule-file JSON Schema shipped with graphtool."""
    text = resources.files("graphtool.lang").joinpath("schema.json").read_text("utf-8")
    return json.loads(text)


@functools.lru_cache(maxsize=1)
def _validator():
    import jsonschema  # a tenth of a second to import; only needed for files not seen before

    return jsonschema.Draft7Validator(schema())


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graphtool", "valid-rules")


def _fingerprint(data) -> str | None:
    """Hash of schema + document; None when the document is not plain JSON data."""
    try:
        text = json.dumps(data, sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return None
    digest = _schema_digest().copy()
    digest.update(text.encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _schema_digest():
    return hashlib.sha256(json.dumps(schema(), sort_keys=True).encode())


def check(data, smap: SourceMap) -> None:
    """Raise a GraphtoolError (with position) for the first schema violation in ``data``.

    Checking a big rule file against the schema costs a fifth of a second, on
    every command; a document that passed once is remembered by its hash (in
    ``~/.cache/graphtool/valid-rules``), so unchanged files are not checked again.
    """
    fingerprint = _fingerprint(data)
    marker = os.path.join(_cache_dir(), fingerprint) if fingerprint else None
    if marker and os.path.exists(marker):
        return
    errors = list(_validator().iter_errors(data))
    if not errors:
        if marker:
            try:
                os.makedirs(os.path.dirname(marker), exist_ok=True)
                open(marker, "w").close()
            except OSError:
                pass  # no cache is fine: the next run checks again
        return
    error = min(errors, key=lambda e: (list(_path_key(e.absolute_path)), _weight(e)))
    raise _explain(error, data, smap)


def _path_key(path):
    for part in path:
        yield (0, part, "") if isinstance(part, int) else (1, 0, str(part))


def _weight(error) -> int:
    return 1 if error.validator in ("oneOf", "anyOf") else 0


def _kind(value) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def where(path, data) -> str:
    """A readable name for a place in a rule file: "rule 'fuse-bn', pattern node 'conv', key 'op'"."""
    words = []
    node = data
    parts = list(path)
    i = 0
    while i < len(parts):
        part = parts[i]
        parent = node
        node = node[part] if isinstance(node, (dict, list)) and _has(node, part) else None
        if isinstance(part, int) and i > 0 and parts[i - 1] in ("rules",):
            rid = node.get("id") if isinstance(node, dict) else None
            words[-1] = f"rule {rid!r}" if isinstance(rid, str) else f"rule #{part + 1}"
        elif isinstance(part, int):
            words.append(f"item {part + 1} of {words.pop() if words else 'list'}")
        elif i > 0 and parts[i - 1] == "pattern" and isinstance(parent, dict):
            words[-1] = f"pattern node {part!r}"
        elif i > 0 and parts[i - 1] == "replace" and isinstance(parent, dict):
            words[-1] = f"replacement node {part!r}"
        elif i > 0 and parts[i - 1] == "attrs":
            words[-1] = f"attr {part!r}"
        else:
            words.append(f"{part!r}")
        i += 1
    return ", ".join(words) if words else "the file"


def _has(node, part) -> bool:
    if isinstance(node, dict):
        return part in node
    return isinstance(part, int) and 0 <= part < len(node)


def _alternatives(error):
    """Sub-errors of a oneOf/anyOf error grouped by alternative, best candidates first."""
    groups: dict[int, list] = {}
    for sub in error.context:
        groups.setdefault(sub.schema_path[0], []).append(sub)
    # An alternative whose type fits the value is the one the author meant.
    fitting = [g for g in groups.values()
               if not any(e.validator == "type" and not e.relative_path for e in g)
               and not any(e.validator == "const" and not e.relative_path for e in g)]
    return fitting, groups


def _expected_types(schema_node) -> list[str]:
    if "type" in schema_node:
        types = schema_node["type"]
        return [types] if isinstance(types, str) else list(types)
    if "const" in schema_node:
        return [repr(schema_node["const"])]
    if "enum" in schema_node:
        return [" or ".join(repr(v) for v in schema_node["enum"])]
    if "$ref" in schema_node:
        name = schema_node["$ref"].rsplit("/", 1)[-1]
        return _expected_types(schema()["definitions"][name])
    for key in ("oneOf", "anyOf"):
        if key in schema_node:
            return [t for alt in schema_node[key] for t in _expected_types(alt)]
    return []


def _explain(error, data, smap: SourceMap):
    if error.validator in ("oneOf", "anyOf"):
        fitting, _ = _alternatives(error)
        if fitting:
            subs = min(fitting, key=len)
            best = min(subs, key=lambda e: (-len(e.absolute_path), _weight(e)))
            return _explain(best, data, smap)
        types = list(dict.fromkeys(_expected_types(error.schema)))
        words = [_TYPE_WORDS.get(t, t) for t in types]
        expected = ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]
        return smap.error(error.absolute_path, f"{where(error.absolute_path, data)} must be "
                          f"{expected}, not {_kind(error.instance)}")
    path = list(error.absolute_path)
    place = where(path, data)
    v, inst, sch = error.validator, error.instance, error.schema
    if v == "additionalProperties":
        allowed = sorted(sch.get("properties", {}))
        extra = sorted(set(inst) - set(allowed))
        key = extra[0]
        hint = did_you_mean(str(key), allowed)
        known = f"; known keys: {', '.join(allowed)}" if allowed and not hint else ""
        return smap.error(path + [key], f"unknown key {key!r} in {place}{hint}{known}", key=True)
    if v == "required":
        missing = [k for k in sch["required"] if k not in inst]
        return smap.error(path, f"{place} is missing the key {missing[0]!r}")
    if v == "type":
        types = error.validator_value
        types = [types] if isinstance(types, str) else types
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        return smap.error(path, f"{place} must be {words}, not {_kind(inst)} ({inst!r})")
    if v == "enum":
        options = [str(o) for o in error.validator_value]
        return smap.error(path, f"{place} must be one of {', '.join(options)}, not {inst!r}"
                          + did_you_mean(str(inst), options))
    if v == "const":
        return smap.error(path, f"{place} must be {error.validator_value!r}, not {inst!r}")
    if v == "pattern":
        return smap.error(path, f"{place}: {inst!r} is not allowed here "
                          f"({sch.get('description') or 'expected a name of letters, digits and _'})")
    if v in ("minProperties", "minItems", "minLength"):
        return smap.error(path, f"{place} must not be empty")
    if v == "minimum":
        return smap.error(path, f"{place} must be at least {error.validator_value}, not {inst!r}")
    if v == "uniqueItems":
        return smap.error(path, f"{place} lists the same item twice")
    if v == "propertyNames":
        bad = next((k for k in inst if not isinstance(k, str) or not k.isidentifier()), "?")
        return smap.error(path + [bad], f"{bad!r} in {place} is not a valid name (use letters, "
                          "digits and _, not starting with a digit)", key=True)
    return smap.error(path, f"{place}: {error.message}")
