"""Which unit test reaches each business refusal of the domains (issue 19, point 1).

A refusal site is a ``raise`` of the domain's refusal family (``shared/application.py``: each domain's
rule violation, conflict and maker-checker errors) in ``services/*/domain``. The unit tests are run under
coverage with one context per test; the report lists every site with the tests whose run executed that
``raise`` line, and the sites no test reaches.

    .venv/bin/pip install coverage   # a tool for this audit only, not a dependency of the project
    .venv/bin/python -m tests.audit_refusals [--markdown FILE]

Exit status 0 whatever is found: it is an audit; the tests that assert each refusal's field, message and
unchanged state are in tests/unit/*/test_refusals.py and beside the rules they check.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: the domains' refusal classes (services/*/domain/errors.py) and the kernel's they derive from
REFUSALS = frozenset({"LoanRuleViolation", "LoanConflict", "MakerChecker", "MemberRuleViolation",
                      "StateConflict", "RuleViolation", "AlreadyExists", "UnknownVisit", "Conflict",
                      "NotAllowed"})


@dataclass
class Site:
    file: str
    line: int
    source: str
    tests: list[str]


def refusal_sites(root: pathlib.Path = ROOT) -> list[Site]:
    """Every ``raise <refusal>(...)`` in the domains, in file and line order."""
    sites = []
    for path in sorted(root.glob("services/*/domain/*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                continue
            f = node.exc.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            if name in REFUSALS:
                source = " ".join((ast.get_source_segment(text, node.exc) or "").split())
                sites.append(Site(str(path.relative_to(root)), node.lineno, source, []))
    return sorted(sites, key=lambda s: (s.file, s.line))


def reached(sites: list[Site], data_file: str) -> None:
    import coverage

    cov = coverage.Coverage(data_file=data_file)
    cov.load()
    data = cov.get_data()
    for site in sites:
        contexts = data.contexts_by_lineno(str(ROOT / site.file)).get(site.line, [])
        # inside a hypothesis property, coverage's innermost test_* frame is hypothesis' own runner
        site.tests = sorted({"(a hypothesis property)" if c.startswith("hypothesis.") else c
                             for c in contexts if c})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", help="also write the table of every site to this file")
    parser.add_argument("tests", nargs="*", default=["tests/unit"], help="test paths (tests/unit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rc = pathlib.Path(tmp) / "coveragerc"
        data_file = str(pathlib.Path(tmp) / "coverage")
        rc.write_text(f"[run]\nsource = services\ndynamic_context = test_function\ndata_file = {data_file}\n")
        run = subprocess.run([sys.executable, "-m", "coverage", "run", f"--rcfile={rc}", "-m", "pytest", "-q",
                              "-p", "no:cacheprovider", "-n", "0", *args.tests], cwd=ROOT)
        if run.returncode not in (0, 1):
            print(f"the tests could not run (pytest exit {run.returncode})", file=sys.stderr)
            return 2
        sites = refusal_sites()
        reached(sites, data_file)
    covered = sum(1 for s in sites if s.tests)
    print(f"refusal sites reached by a test: {covered} of {len(sites)}")
    for s in sites:
        if not s.tests:
            print(f"  not reached: {s.file}:{s.line}: {s.source[:100]}")
    if args.markdown:
        lines = [f"| site | refusal | tests that reach it ({covered} of {len(sites)} reached) |",
                 "| --- | --- | --- |"]
        for s in sites:
            shown = ", ".join(t.removeprefix("tests.unit.") for t in s.tests[:2])
            more = f" (+{len(s.tests) - 2})" if len(s.tests) > 2 else ""
            lines.append(f"| {s.file}:{s.line} | `{s.source[:90].replace('|', '/')}` | "
                         f"{shown + more if s.tests else '**none**'} |")
        pathlib.Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
