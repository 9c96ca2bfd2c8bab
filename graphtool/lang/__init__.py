"""The rule language: YAML rule files with positions, their JSON Schema, safe expressions.

``loader.load_rules`` reads files (``source``), checks them against
``schema.json`` (``validate``) and compiles them into ``model`` objects;
``expr`` and ``functions`` are the expression evaluator and its vocabulary.
"""
