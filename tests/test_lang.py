"""Rule language: YAML positions, schema errors, includes, stages, safe expressions."""
from __future__ import annotations

import json
import textwrap
from importlib import resources

import jsonschema
import numpy as np
import pytest

from graphtool.errors import GraphtoolError
from graphtool.lang.expr import Expression
from graphtool.lang.functions import register_function
from graphtool.rewrite import load_rules


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_error(tmp_path, text: str, name: str = "rules.yaml") -> str:
    path = write(tmp_path, name, text)
    with pytest.raises(GraphtoolError) as info:
        load_rules(path)
    message = str(info.value)
    assert "\n" not in message
    return message


IDENTITY = """
rules:
  - id: drop-identity
    pattern:
      ident: {op: Identity, inputs: [x]}
    replace: x
"""


def test_a_valid_file_loads_with_positions(tmp_path):
    rules = load_rules(write(tmp_path, "ok.yaml", IDENTITY))
    rule = rules.rule("drop-identity")
    assert (rule.position.line, rule.position.column) == (2, 5)
    assert [s.name for s in rules.stages] == ["main"]
    assert rule.priority == 1 and rule.replacement.kind == "bypass"


def test_unknown_key_gives_position_and_suggestion(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            patern:
              a: {op: Relu}
            replace: a
        """)
    assert message.startswith(f"{tmp_path / 'rules.yaml'}:3:5: unknown key 'patern' in rule 'r'")
    assert "did you mean 'pattern'" in message


def test_unknown_key_inside_a_pattern_node(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {opp: Relu, inputs: [x]}
            replace: x
        """)
    assert ":4:11: unknown key 'opp' in rule 'r', pattern node 'a'" in message
    assert "did you mean 'op'" in message


def test_wrong_type_names_the_expected_type(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            priority: high
            pattern: {a: {op: Relu, inputs: [x]}}
            replace: x
        """)
    assert ":3:15:" in message and "'priority' must be an integer, not a string" in message


def test_wrong_enum_value_suggests(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            control_inputs: keeep
            pattern: {a: {op: Relu, inputs: [x]}}
            replace: x
        """)
    assert ":3:21:" in message and "must be one of keep, drop, forbid" in message
    assert "did you mean 'keep'" in message


def test_one_of_errors_pick_the_intended_alternative(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern: {a: {op: 5, inputs: [x]}}
            replace: x
        """)
    assert ":3:23:" in message and "must be a string" in message and "not an integer" in message


def test_missing_required_key(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - pattern: {a: {op: Relu, inputs: [x]}}
            replace: x
        """)
    assert ":2:5:" in message and "missing the key 'id'" in message


def test_yaml_syntax_error_has_position(tmp_path):
    message = load_error(tmp_path, "rules:\n  - id: r\n    pattern: {a: [\n")
    assert message.startswith(f"{tmp_path / 'rules.yaml'}:4:1: invalid YAML")


def test_duplicate_yaml_keys_are_errors(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            id: s
            pattern: {a: {op: Relu, inputs: [x]}}
            replace: x
        """)
    assert ":3:5: duplicate key 'id' (first given at line 2)" in message


def test_duplicate_rule_ids(tmp_path):
    message = load_error(tmp_path, IDENTITY + "  - id: drop-identity\n    action: sort\n")
    assert ":6:9: rule id 'drop-identity' is already used at" in message


def test_include_resolves_relative_paths_and_orders_rules(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/base.yaml", IDENTITY)
    top = write(tmp_path, "top.yaml", """
        include: [sub/base.yaml]
        rules:
          - id: sort-last
            action: sort
        """)
    rules = load_rules(top)
    assert [r.id for r in rules.rules] == ["drop-identity", "sort-last"]
    assert len(rules.files) == 2


def test_include_cycle_is_reported_with_the_chain(tmp_path):
    write(tmp_path, "a.yaml", "include: [b.yaml]\n")
    write(tmp_path, "b.yaml", "rules: []\ninclude: [c.yaml]\n")
    write(tmp_path, "c.yaml", "include: [a.yaml]\n")
    with pytest.raises(GraphtoolError) as info:
        load_rules(tmp_path / "a.yaml")
    assert "c.yaml:1:11: include cycle: a.yaml -> b.yaml -> c.yaml -> a.yaml" in str(info.value)


def test_missing_include(tmp_path):
    message = load_error(tmp_path, "include: [nope.yaml]\n")
    assert ":1:11: included file 'nope.yaml' does not exist" in message


def test_stages_order_and_include_stage(tmp_path):
    write(tmp_path, "base.yaml", IDENTITY)
    top = write(tmp_path, "top.yaml", """
        stages: [cleanup, {name: finish, max_passes: 3}]
        include: [{file: base.yaml, stage: cleanup}]
        rules:
          - id: sort-last
            stage: finish
            action: sort
        """)
    rules = load_rules(top)
    assert [(s.name, [r.id for r in s.rules]) for s in rules.stages] == [
        ("cleanup", ["drop-identity"]), ("finish", ["sort-last"])]
    assert rules.stages[1].max_passes == 3


def test_unknown_stage_suggests(tmp_path):
    message = load_error(tmp_path, """
        stages: [cleanup]
        rules:
          - id: s
            stage: claenup
            action: sort
        """)
    assert ":3:5: rule 's' is in stage 'claenup'" in message and "did you mean 'cleanup'" in message


def test_rule_without_stage_in_a_staged_file(tmp_path):
    message = load_error(tmp_path, "stages: [a]\nrules:\n  - id: s\n    action: sort\n")
    assert "rule 's' names no stage" in message


def test_unknown_action_and_bad_action_args(tmp_path):
    message = load_error(tmp_path, "rules:\n  - id: s\n    action: prnue\n")
    assert ":3:13: unknown action 'prnue' (did you mean 'prune'?)" in message
    message = load_error(tmp_path, "rules:\n  - id: s\n    action: rename_op\n    args: {op: A, too: B}\n")
    assert "action 'rename_op' has no argument 'too' (did you mean 'to'?)" in message


@pytest.mark.parametrize("text, expected", [
    ("__import__('os')", "'__import__' is not allowed (dunder names"),
    ("x.__class__", "attribute access (x.y) is not allowed"),
    ("open('/etc/passwd')", "'open' is not an allowed function"),
    ("(lambda: 1)()", "only the built-in functions can be called"),
    ("[i for i in shape(x)]", "comprehensions are not allowed"),
    ("os.system('true')", "attribute access (x.y) is not allowed"),
    ("eval('1')", "'eval' is not an allowed function"),
    ("f'{x}'", "f-strings are not allowed"),
    ("__builtins__", "the name '__builtins__' is not allowed"),
    ("(y := 1)", "':=' is not allowed"),
])
def test_unsafe_expressions_are_rejected_at_load_with_position(tmp_path, text, expected):
    message = load_error(tmp_path, f"""
        rules:
          - id: r
            pattern: {{a: {{op: Relu, inputs: [x]}}}}
            where: ["{text}"]
            replace: x
        """)
    assert f"rules.yaml:4:13" in message or "rules.yaml:4:1" in message
    assert expected in message


def test_expression_error_column_points_inside_the_string(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern: {a: {op: Relu, inputs: [x]}}
            where: ["rank(x) == 4 and gama > 0"]
            replace: x
        """)
    # The quote is at column 13, the text starts at 14; "gama" is 17 characters in.
    assert ":4:31: unknown name 'gama'" in message


def test_unbound_capture_in_replacement(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern: {a: {op: Relu, inputs: [xx]}}
            replace:
              a: {op: Relu6, inputs: [x]}
        """)
    assert ":5:31:" in message and "'x' is neither a capture nor a replacement node" in message
    assert "did you mean 'xx'" in message


def test_unbound_name_in_computed_const(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {op: Mul, inputs: [x, scale]}
            replace:
              a: {op: Mul, inputs: [x, t]}
              t: {const: "sclae * 2"}
        """)
    assert ":7:19: unknown name 'sclae' (did you mean 'scale'?)" in message


def test_literal_const_of_the_wrong_shape_is_a_load_error(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              b: {op: BiasAdd, inputs: [x, _]}
            replace:
              b: {op: BiasAdd, inputs: [x, new_bias]}
              new_bias: {const: [1.0, 2.0, 3.0], shape: [4]}
        """)
    assert ":7:49: computed const 'new_bias' has shape [3], but the rule declares [4]" in message


def test_pattern_structure_errors(tmp_path):
    two_roots = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {op: Relu, inputs: [x]}
              b: {op: Relu, inputs: [x]}
            replace: x
        """)
    assert "the pattern has several roots (a, b)" in two_roots
    cycle = load_error(tmp_path, """
        rules:
          - id: r
            root: c
            pattern:
              a: {op: Relu, inputs: [b]}
              b: {op: Relu, inputs: [a]}
              c: {op: Relu, inputs: [a]}
            replace: a
        """)
    assert "the pattern has a cycle: a -> b -> a" in cycle
    reads_root = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {op: Relu, inputs: [x]}
            replace:
              c: {op: Relu6, inputs: [b]}
              b: {op: Neg, inputs: [a]}
        """)
    assert "replacement node 'b' reads the pattern root 'a'" in reads_root
    assert "the replacement has a cycle: a -> b -> a" in load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {op: Relu, inputs: [x]}
            replace:
              a: {op: Relu6, inputs: [b]}
              b: {op: Neg, inputs: [a]}
        """)


def test_replacement_node_reaching_no_output(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern:
              a: {op: Relu, inputs: [x]}
            replace:
              a: {op: Relu6, inputs: [x]}
              lost: {op: Neg, inputs: [x]}
        """)
    assert ":7:7: replacement node 'lost' is not used by 'a' (it reaches no output)" in message


def test_lint_warnings_for_unused_capture_and_self_recreating_pattern(tmp_path):
    rules = load_rules(write(tmp_path, "w.yaml", """
        rules:
          - id: loop
            pattern:
              a: {op: Relu, inputs: [x]}
            replace:
              a: {op: Relu, inputs: [b]}
              b: {op: Relu, inputs: [x]}
          - id: unused
            pattern:
              m: {op: Mul, inputs: [x, y]}
            replace: x
        """))
    text = "\n".join(rules.warnings)
    assert "rule 'loop': the replacement contains the rule's own pattern" in text
    assert "rule 'unused': capture 'y' is never used again" in text
    assert len(rules.warnings) == 2


def test_helper_calls_need_a_registered_function(tmp_path):
    message = load_error(tmp_path, """
        rules:
          - id: r
            pattern: {a: {op: Relu, inputs: [x]}}
            where: [{call: scale_trailing_axis, args: [x]}]
            replace: x
        """)
    assert ":4:20: no helper function 'scale_trailing_axis' is registered" in message
    assert "did you mean 'scale_trailing_axes'" in message


def test_python_modules_register_helpers(tmp_path, monkeypatch):
    write(tmp_path, "my_helpers_for_test.py", """
        from graphtool.rewrite import register_function

        @register_function("always_true_for_test")
        def always_true(x):
            return True
        """)
    monkeypatch.syspath_prepend(str(tmp_path))
    rules = load_rules(write(tmp_path, "h.yaml", """
        python: [my_helpers_for_test]
        rules:
          - id: r
            pattern: {a: {op: Relu, inputs: [x]}}
            where: [{call: always_true_for_test, args: [x]}]
            replace: x
        """))
    assert rules.rule("r").conditions[0].function({}) is True


def test_register_function_refuses_a_second_owner():
    @register_function("owned_once_for_test")
    def first(x):
        return x
    with pytest.raises(GraphtoolError, match="already registered"):
        @register_function("owned_once_for_test")
        def second(x):
            return x


def test_expression_semantics_follow_numpy():
    w = np.arange(24, dtype=np.float32).reshape(2, 3, 1, 4)
    s = np.array([1, 2, 3, 4], np.float32)
    env = {"w": w, "s": s, "n": 3}
    assert np.array_equal(Expression("w * s").evaluate(env), w * s)
    assert Expression("shape(w)[-1] == size(s) and rank(w) == 4").evaluate(env) is True
    assert Expression("shape(w)[:2] + [n]").evaluate(env) == [2, 3, 3]
    np.testing.assert_allclose(Expression("rsqrt(s + 1e-3)").evaluate(env),
                               1 / np.sqrt(s + 1e-3), rtol=1e-6)
    assert Expression("transpose(w, [3, 2, 0, 1]).shape" if False else
                      "shape(transpose(w, [3, 2, 0, 1]))").evaluate(env) == [4, 1, 2, 3]
    assert Expression("cast(s, int32)").evaluate(env).dtype == np.int32
    assert Expression("all_equal(s) or max(s) == 4").evaluate(env)
    assert Expression("1 if n > 2 else 0").evaluate(env) == 1
    assert Expression("reshape(s, [2, 2])[1, 0]").evaluate(env) == 3


def test_literal_lists_are_built_once_but_each_evaluation_gets_its_own():
    listed = Expression("[1, -2, 3.5]")
    first = listed.evaluate({})
    assert first == [1, -2, 3.5]
    first.append(4)  # a caller's change does not reach the next evaluation
    assert listed.evaluate({}) == [1, -2, 3.5]
    s = np.arange(4, dtype=np.float32).reshape(2, 2)
    assert Expression("reshape(s, [-1])").evaluate({"s": s}).shape == (4,)
    assert Expression("shape(s) == [2, 2] and -size(s) == -4").evaluate({"s": s}) is True
    with pytest.raises(GraphtoolError, match="bad operand type"):
        Expression("~2.5").evaluate({})  # still an error of the evaluation, not of loading


def test_expression_runtime_errors_are_graphtool_errors():
    with pytest.raises(GraphtoolError, match="neither true nor false; wrap it in all"):
        Expression("s > 0 and True").evaluate({"s": np.ones(3)})
    with pytest.raises(GraphtoolError, match="FloatingPointError"):
        Expression("sqrt(s)").evaluate({"s": -np.ones(2)})
    with pytest.raises(GraphtoolError, match="more than"):
        Expression("ones([100000, 100000])").evaluate({})
    with pytest.raises(GraphtoolError, match="integer exponent"):
        Expression("2 ** 100000").evaluate({})
    with pytest.raises(GraphtoolError, match="cannot apply Mult to a string"):
        Expression("'ab' * 1000000").evaluate({})


def test_schema_ships_with_the_package_and_is_valid():
    text = resources.files("graphtool.lang").joinpath("schema.json").read_text("utf-8")
    schema = json.loads(text)
    jsonschema.Draft7Validator.check_schema(schema)
    assert "rule" in schema["definitions"]
