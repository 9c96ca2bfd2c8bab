"""Validate a rewritten graph: TensorFlow runs the reference, OpenCV (or TF) the candidate.

``validate(reference, candidate)`` feeds both graphs the same input, compares
every output (see ``compare`` for the pass rule) and, on request, bisects to
the first layer that diverges.  OpenCV always runs in a child process
(``runner``), so a crash or hang is a failed validation, not a dead graphtool.
"""
from __future__ import annotations

import os
import time

import numpy as np

from graphtool.errors import GraphtoolError
from graphtool.graph import parse_ref
from graphtool.load import load
from graphtool.validate.bisection import Divergence, LayerValues, locate
from graphtool.validate.compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparison, align_and_compare
from graphtool.validate.feeds import (DEFAULT_SEED, file_inputs, fit, random_inputs,
                                      reference_arrays)
from graphtool.validate.layer_map import input_dependent, upstream_names
from graphtool.validate.report import ValidationReport
from graphtool.validate.runner import OpenCVResult, run_opencv
from graphtool.validate.signature import Signature, read_signature

ENGINES = ("opencv", "tf")
__all__ = ["validate", "ValidationReport", "Comparison", "Divergence", "OpenCVResult",
           "run_opencv", "ENGINES"]


def validate(reference, candidate, *, pbtxt=None, inputs: dict | None = None, input_file=None,
             reference_data=None, rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL,
             engine: str = "opencv", opencv_python: str | None = None,
             opencv_engine: str | None = None, bisect: bool = False, sidecar=None,
             input_shapes: dict | None = None, timeout: float = 120.0,
             seed: int = DEFAULT_SEED) -> ValidationReport:
    """Run ``reference`` in TensorFlow and ``candidate`` in OpenCV (or TF) and compare outputs.

    Inputs come from ``inputs`` (name -> array), ``input_file`` (.npy, .npz or an
    image), ``reference_data`` (.npz with inputs/NAME and outputs/NAME, which
    also replaces the TensorFlow run) or seeded random data.  Names and shapes
    come from the freeze sidecar ``<reference>.json`` when present (or
    ``sidecar``), else from Placeholders and graph sinks; ``input_shapes``
    overrides.  Bad input raises ``GraphtoolError``; a candidate that crashes or
    disagrees gives a report with ``passed=False``.
    """
    _check_options(engine, rtol, atol, timeout, inputs, input_file, reference_data)
    clock = _Clock()
    ref_graph = load(reference)
    signature = read_signature(ref_graph, reference, sidecar=sidecar, input_shapes=input_shapes)
    feeds, expected, source = _inputs(signature, inputs, input_file, reference_data, seed)
    run = _Run(ref_graph, load(candidate), load(pbtxt, check=False) if pbtxt else None,
               signature, feeds, candidate, pbtxt, opencv_python, opencv_engine, timeout)
    report = ValidationReport(passed=False, reference=os.fspath(reference),
                              candidate=os.fspath(candidate),
                              pbtxt=os.fspath(pbtxt) if pbtxt else None, engine=engine,
                              rtol=rtol, atol=atol, signature=signature.source)
    report.inputs = [{"name": p.name, "shape": list(feeds[p.name].shape),
                      "dtype": str(feeds[p.name].dtype), "source": source}
                     for p in signature.inputs]
    try:
        if expected is None:
            fetches = [p.tensor for p in signature.outputs]
            values = run.session("reference").run(run.tf_feeds, fetches)
            expected = {p.name: values[p.tensor] for p in signature.outputs}
            clock.lap(report, "reference")
        got, sources = (run.candidate_tf(report) if engine == "tf"
                        else run.candidate_opencv(report))
        clock.lap(report, "candidate")
        if got is not None:
            report.outputs = [_compare_output(p.name, expected[p.name], got.get(p.name),
                                              sources.get(p.name), rtol, atol)
                              for p in signature.outputs]
            report.passed = all(o.passed for o in report.outputs)
        if bisect and got is not None and not report.passed:
            report.bisect = run.bisect(report)
            clock.lap(report, "bisect")
    finally:
        run.close()
    return report


def _check_options(engine, rtol, atol, timeout, inputs, input_file, reference_data) -> None:
    if engine not in ENGINES:
        raise GraphtoolError(f"unknown engine {engine!r}; use 'opencv' or 'tf'")
    if rtol < 0 or atol < 0:
        raise GraphtoolError("tolerances must not be negative")
    if not timeout or timeout <= 0:
        raise GraphtoolError("the timeout must be a positive number of seconds")
    given = [n for n, v in (("inputs", inputs), ("--input", input_file),
                            ("--reference-data", reference_data)) if v is not None]
    if len(given) > 1:
        raise GraphtoolError(f"{' and '.join(given)} both give the input data; pass only one "
                             "(reference data already holds its inputs)")


def _inputs(signature: Signature, inputs, input_file, reference_data, seed):
    """(arrays by input name, reference outputs or None, a description of the source)."""
    if reference_data is not None:
        feeds, expected = reference_arrays(reference_data, signature)
        return feeds, expected, f"reference data {os.fspath(reference_data)}"
    if input_file is not None:
        return file_inputs(input_file, signature.inputs), None, f"file {os.fspath(input_file)}"
    if inputs is not None:
        missing = [p.name for p in signature.inputs if p.name not in inputs]
        if missing:
            raise GraphtoolError(f"no array given for input(s) {missing}")
        return ({p.name: fit(inputs[p.name], p, "inputs") for p in signature.inputs}, None,
                "given arrays")
    return random_inputs(signature.inputs, seed), None, f"random (seed {seed})"


class _Run:
    """One validation's graphs, data and options, and the TensorFlow sessions it opened."""

    def __init__(self, reference, candidate, pbtxt_graph, signature, feeds, candidate_path,
                 pbtxt, python, engine, timeout):
        self.graphs = {"reference": reference, "candidate": candidate}
        # What the candidate runtime imports: the pbtxt topology when there is one.
        self.topology = pbtxt_graph if pbtxt_graph is not None else candidate
        self.signature = signature
        self.feeds = feeds
        self.tf_feeds = {p.tensor: feeds[p.name] for p in signature.inputs}
        self.opencv_args = dict(pb=candidate_path, pbtxt=pbtxt, python=python, engine=engine,
                                timeout=timeout)
        self._sessions = {}

    def session(self, which: str):
        """A TFSession on the reference or candidate graph, opened on first use."""
        if which not in self._sessions:
            from graphtool.validate.tf_runner import TFSession
            self._sessions[which] = TFSession(self.graphs[which], label=which)
        return self._sessions[which]

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()

    def opencv(self, dump_layers=None) -> OpenCVResult:
        """The candidate in OpenCV; each output is looked up under the names OpenCV may use."""
        outputs = [list(dict.fromkeys([p.name] + upstream_names(self.topology, p.tensor)))
                   for p in self.signature.outputs]
        by_node = {parse_ref(p.tensor).node: self.feeds[p.name] for p in self.signature.inputs}
        return run_opencv(inputs=by_node, outputs=outputs, dump_layers=dump_layers,
                          **self.opencv_args)

    def candidate_opencv(self, report):
        result = self.opencv()
        report.opencv_version, report.opencv_engine = result.version, result.engine
        report.opencv_python, report.stage = result.python, result.stage
        if not result.ok:
            report.error = result.error
            return None, {}
        return result.outputs, dict(result.output_layers)

    def candidate_tf(self, report):
        from graphtool.validate.tf_runner import TFRunError, unknown_ops

        foreign = unknown_ops(self.graphs["candidate"])
        if foreign:
            listed = "; ".join(f"{op} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
                               for op, names in sorted(foreign.items()))
            raise GraphtoolError(f"the candidate holds ops TensorFlow does not define: {listed}; "
                                 "--engine tf runs only graphs made of TensorFlow ops - validate "
                                 "it with --engine opencv", path=report.candidate)
        outputs = self.signature.outputs
        try:
            values = self.session("candidate").run(self.tf_feeds, [p.tensor for p in outputs])
        except TFRunError as exc:
            report.error = str(exc)
            return None, {}
        return ({p.name: values[p.tensor] for p in outputs},
                {p.name: p.tensor for p in outputs})

    def bisect(self, report) -> Divergence:
        """Pair the candidate's intermediate values with the reference's; find the first miss."""
        from graphtool.validate.tf_runner import TFRunError

        try:
            reference = self.session("reference")
            if report.engine == "tf":
                layers = self._tf_layers()
            else:
                result = self.opencv(dump_layers="all")
                if not result.layers:
                    return Divergence(note="OpenCV gave no intermediate layers: "
                                           f"{result.dump_error or result.error}")
                layers = LayerValues(result.layers, result.layer_names, result.layer_types)
            found = locate(self.graphs["reference"], self.topology, layers, reference,
                           self.tf_feeds, rtol=report.rtol, atol=report.atol,
                           any_layout=report.engine != "tf", weights=self.graphs["candidate"])
            if found.node is None and found.compared and report.engine == "opencv":
                found.note += ("; OpenCV computed them with layer fusion off, so suspect a "
                               "fusion or the choice of output layer")
            return found
        except TFRunError as exc:
            return Divergence(note=f"bisection stopped: {exc}")

    def _tf_layers(self) -> LayerValues:
        graph = self.graphs["candidate"]
        session = self.session("candidate")
        computed = input_dependent(graph)
        names = session.fetchable(n.name for n in graph.nodes
                                  if n.name in computed and n.op != "Placeholder")
        return LayerValues(session.run(self.tf_feeds, names), names,
                           {n: graph.node(n).op for n in names})


def _compare_output(name, expected, got, source, rtol, atol) -> Comparison:
    if got is None:
        return Comparison(name=name, passed=False, error="the candidate produced no value",
                          source=source)
    result = align_and_compare(name, np.asarray(expected), got, rtol=rtol, atol=atol)
    result.source = source
    return result


class _Clock:
    def __init__(self):
        self._last = time.monotonic()

    def lap(self, report, what: str) -> None:
        now = time.monotonic()
        report.seconds[what] = round(now - self._last, 3)
        self._last = now
