"""Gate outputs: terminal text, JSON, JUnit XML, GitHub Actions annotations and step summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence

from em_eval.gate.compare import GateSettings, TaskVerdict
from em_eval.results import Run


def report_dict(
    baseline: Run, candidate: Run, verdicts: Sequence[TaskVerdict], settings: GateSettings
) -> dict[str, Any]:
    """The whole decision as JSON-ready data."""
    return {
        "status": "fail" if any(v.regression for v in verdicts) else "pass",
        "rule": "fail a task when the upper end of its (1 - alpha/tasks) interval of candidate - baseline "
        "lies below -margin",
        "settings": {
            "alpha": settings.alpha,
            "margin": settings.margin,
            "power": settings.power,
            "suspicious_gain": settings.suspicious_gain,
            "bootstrap_resamples": settings.resamples,
            "seed": settings.seed,
        },
        "baseline": {"path": str(baseline.path), "label": baseline.label},
        "candidate": {"path": str(candidate.path), "label": candidate.label},
        "tasks": [v.as_dict() for v in verdicts],
    }


def text_report(baseline: Run, candidate: Run, verdicts: Sequence[TaskVerdict]) -> str:
    lines = [f"baseline:  {baseline.label}  ({baseline.path})", f"candidate: {candidate.label}  ({candidate.path})"]
    for v in verdicts:
        lines.append(f"[{v.status.upper():4}] {v.summary()}")
        lines += [f"       warning: {w}" for w in v.warnings]
    failed = [v.task for v in verdicts if v.regression]
    lines.append(f"RESULT: regression on {', '.join(failed)}" if failed else "RESULT: no significant regression")
    return "\n".join(lines)


def junit_xml(verdicts: Sequence[TaskVerdict], suite: str = "em-eval check") -> str:
    """One JUnit test case per task; a regression is a failure, warnings go to system-out."""
    root = ET.Element("testsuites")
    node = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(verdicts)),
        failures=str(sum(v.regression for v in verdicts)),
        errors="0",
        skipped="0",
    )
    for v in verdicts:
        case = ET.SubElement(node, "testcase", classname="em_eval.gate", name=v.task)
        if v.regression:
            failure = ET.SubElement(case, "failure", message=f"significant drop on {v.task}", type="regression")
            failure.text = v.summary()
        ET.SubElement(case, "system-out").text = "\n".join([v.summary(), *(f"warning: {w}" for w in v.warnings)])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _escape(text: str) -> str:
    """GitHub workflow-command escaping of a message."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotations(verdicts: Sequence[TaskVerdict]) -> list[str]:
    """``::error``/``::warning``/``::notice`` workflow commands, one per finding."""
    out = []
    for v in verdicts:
        kind = "error" if v.regression else "notice"
        out.append(f"::{kind} title=em-eval check {v.task}::{_escape(v.summary())}")
        out += [f"::warning title=em-eval check {v.task}::{_escape(w)}" for w in v.warnings]
    return out


def markdown_summary(report: dict[str, Any]) -> str:
    """A table for ``$GITHUB_STEP_SUMMARY``."""
    rows = [
        "| task | status | baseline | candidate | diff (CI) | p | test | smallest detectable drop |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in report["tasks"]:
        mdd = "n/a" if t["min_detectable_drop"] is None else f"{100 * t['min_detectable_drop']:.1f}"
        rows.append(
            f"| {t['task']} | {t['status']} | {100 * t['baseline']:.1f} | {100 * t['candidate']:.1f} | "
            f"{100 * t['diff']:+.1f} ({100 * t['ci_low']:+.1f}, {100 * t['ci_high']:+.1f}) | {t['p_value']:.3g} | "
            f"{t['test']} | {mdd} |"
        )
    return f"### em-eval check: {report['status']}\n\n" + "\n".join(rows) + "\n"


def write_outputs(out_dir: Path, report: dict[str, Any], verdicts: Sequence[TaskVerdict]) -> dict[str, Path]:
    """Write ``gate.json``, ``gate.junit.xml`` and ``annotations.txt`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "gate.json",
        "junit": out_dir / "gate.junit.xml",
        "annotations": out_dir / "annotations.txt",
    }
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["junit"].write_text(junit_xml(verdicts))
    paths["annotations"].write_text("\n".join(annotations(verdicts)) + "\n")
    return paths
