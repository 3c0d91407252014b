"""This deployment's ML Test Score, from a rubric file and the files of the repository.

The rubric is from Eric Breck, Shanqing Cai, Eric Nielsen, Michael Salib and D. Sculley, "The
ML Test Score: A Rubric for ML Production Readiness and Technical Debt Reduction", IEEE
International Conference on Big Data, 2017. It has 28 tests in four sections of seven: data,
model, ML infrastructure and monitoring. A test scores 1 point when it is automated and runs
repeatedly, 0.5 when it is done by hand and the result is documented, and 0 otherwise. Each
section's score is the sum of its tests, and the final score is the minimum of the four sums,
so the weakest section decides.

``conf/ml_test_score.yaml`` states, for each test, how this deployment meets it and the
evidence: files of the repository, each with a text that must occur in it (a function, a test
or a heading). :func:`score_rubric` checks every piece of evidence against the files, so a test
whose evidence was deleted or renamed drops to 0 instead of keeping a stale point.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path

from streamrec_spark.contracts.yaml_source import SourceList, SourceMap
from streamrec_spark.evaluation.config_reader import ConfigReader

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUBRIC = REPO_ROOT / "conf" / "ml_test_score.yaml"

AUTOMATED = "automated"
MANUAL = "manual"
MISSING = "missing"
POINTS = {AUTOMATED: 1.0, MANUAL: 0.5, MISSING: 0.0}
SECTION_IDS: tuple[str, ...] = ("data", "model", "infrastructure", "monitoring")
TESTS_PER_SECTION = 7


@dataclass(frozen=True)
class Evidence:
    """A repository file that does the test, and a text that must occur in it (or None)."""

    file: str
    contains: str | None = None

    def describe(self) -> str:
        return f"{self.file} ({self.contains})" if self.contains else self.file


@dataclass(frozen=True)
class RubricTest:
    """One of the 28 tests, as this deployment meets it.

    ``status`` is ``automated``, ``manual`` or ``missing``. ``how`` describes how the
    deployment meets the test, or for a missing test what would be needed. Automated and manual tests
    have at least one piece of evidence; missing tests have none.
    """

    id: str
    section: str
    name: str
    status: str
    how: str
    evidence: tuple[Evidence, ...]
    where: str


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    tests: tuple[RubricTest, ...]


@dataclass(frozen=True)
class Rubric:
    source_file: str
    reference: str
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class TestScore:
    """A test's points after its evidence was checked; ``problems`` lists missing evidence."""

    test: RubricTest
    points: float
    problems: tuple[str, ...]

    @property
    def claimed(self) -> float:
        return POINTS[self.test.status]


@dataclass(frozen=True)
class SectionScore:
    section: Section
    tests: tuple[TestScore, ...]

    @property
    def total(self) -> float:
        return sum(score.points for score in self.tests)


@dataclass(frozen=True)
class ScoreReport:
    rubric: Rubric
    sections: tuple[SectionScore, ...]

    @property
    def total(self) -> float:
        return sum(section.total for section in self.sections)

    @property
    def final(self) -> float:
        """The minimum of the section sums."""
        return min(section.total for section in self.sections)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(
            f"{test.test.id}: {problem}"
            for section in self.sections
            for test in section.tests
            for problem in test.problems
        )


# --- loading ------------------------------------------------------------------------------


def _read_evidence(reader: ConfigReader, node: SourceMap, name: str) -> tuple[Evidence, ...]:
    items = reader.sequence(node, "evidence", name, required=False)
    evidence = []
    for index, item in enumerate(items):
        item_name = f"{name}.evidence[{index}]"
        if not isinstance(item, SourceMap):
            reader.problem(items.where(index), f"'{item_name}' must be a mapping with 'file' and 'contains'")
            continue
        reader.check_keys(item, ("file", "contains"), item_name)
        file = reader.string(item, "file", item_name)
        if file and (Path(file).is_absolute() or ".." in Path(file).parts):
            reader.problem(item.where("file"), f"'{item_name}.file' must be a path inside the "
                                               f"repository, found {file!r}")
        contains = reader.string(item, "contains", item_name) if item.get("contains") is not None else None
        evidence.append(Evidence(file, contains))
    return tuple(evidence)


def _read_test(reader: ConfigReader, node: SourceMap, section: str, index: int) -> RubricTest:
    name = f"{section}.tests[{index}]"
    reader.check_keys(node, ("id", "name", "status", "how", "evidence"), name)
    status = reader.string(node, "status", name, choices=tuple(POINTS))
    evidence = _read_evidence(reader, node, name)
    if status in (AUTOMATED, MANUAL) and not evidence:
        reader.problem(node.where("status"), f"'{name}' is {status} but lists no evidence; add the "
                                             "file that does it")
    if status == MISSING and evidence:
        reader.problem(node.where("evidence"), f"'{name}' is missing but lists evidence; score it "
                                               "automated or manual, or remove the evidence")
    return RubricTest(
        id=reader.string(node, "id", name),
        section=section,
        name=reader.string(node, "name", name),
        status=status,
        how=reader.string(node, "how", name),
        evidence=evidence,
        where=node.where(),
    )


def _read_section(reader: ConfigReader, node: SourceMap, index: int) -> Section:
    name = f"sections[{index}]"
    reader.check_keys(node, ("id", "title", "tests"), name)
    section_id = reader.string(node, "id", name, choices=SECTION_IDS)
    tests_node = reader.sequence(node, "tests", name)
    if len(tests_node) != TESTS_PER_SECTION:
        reader.problem(node.where("tests"), f"section '{section_id}' has {len(tests_node)} tests; "
                                            f"the rubric has {TESTS_PER_SECTION} per section")
    tests = []
    for position, item in enumerate(tests_node):
        if not isinstance(item, SourceMap):
            reader.problem(tests_node.where(position), f"'{section_id}.tests[{position}]' must be a mapping")
            continue
        tests.append(_read_test(reader, item, section_id, position))
    return Section(section_id, reader.string(node, "title", name), tuple(tests))


def load_rubric(path: str | Path = DEFAULT_RUBRIC) -> Rubric:
    """Parse the rubric YAML; raise ConfigError listing every problem with ``file:line``.

    The file must have the four sections (data, model, infrastructure, monitoring) in that
    order, seven tests in each, and unique test ids.
    """
    reader = ConfigReader(path)
    root = reader.root
    reader.check_keys(root, ("reference", "sections"), "")
    reference = reader.string(root, "reference", "")
    sections_node: SourceList = reader.sequence(root, "sections", "")
    sections = []
    for index, item in enumerate(sections_node):
        if isinstance(item, SourceMap):
            sections.append(_read_section(reader, item, index))
        else:
            reader.problem(sections_node.where(index), f"'sections[{index}]' must be a mapping")
    if tuple(section.id for section in sections) != SECTION_IDS:
        reader.problem(sections_node.where(), f"the sections must be {', '.join(SECTION_IDS)} in that "
                                              f"order, found {', '.join(s.id for s in sections) or 'none'}")
    seen: dict[str, str] = {}
    for section in sections:
        for test in section.tests:
            if test.id in seen:
                reader.problem(test.where, f"test id '{test.id}' is also used at {seen[test.id]}")
            seen.setdefault(test.id, test.where)
    reader.finish()
    return Rubric(str(path), reference, tuple(sections))


# --- scoring ------------------------------------------------------------------------------


def check_evidence(evidence: Evidence, root: Path) -> str | None:
    """Return why ``evidence`` does not hold in the repository at ``root``, or None when it does."""
    path = root / evidence.file
    if not path.is_file():
        return f"evidence file {evidence.file} not found"
    if evidence.contains is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"evidence file {evidence.file} cannot be read ({exc})"
    if evidence.contains not in text:
        return f"{evidence.file} no longer contains {evidence.contains!r}"
    return None


def score_test(test: RubricTest, root: Path) -> TestScore:
    """Score one test: its status's points when every piece of evidence holds, else 0."""
    problems = tuple(
        problem for problem in (check_evidence(item, root) for item in test.evidence) if problem is not None
    )
    points = 0.0 if problems else POINTS[test.status]
    return TestScore(test, points, problems)


def score_rubric(rubric: Rubric, root: str | Path = REPO_ROOT) -> ScoreReport:
    """Score every test of ``rubric`` against the files under ``root``."""
    root = Path(root)
    sections = tuple(
        SectionScore(section, tuple(score_test(test, root) for test in section.tests))
        for section in rubric.sections
    )
    return ScoreReport(rubric, sections)


# --- output -------------------------------------------------------------------------------


def _points(value: float) -> str:
    return f"{value:g}"


def format_report(report: ScoreReport, width: int = 100) -> str:
    """Render a table per section, the section sums, the total and the final score.

    A test whose evidence did not hold shows its status with a ``!`` and the reason.
    """
    indent = " " * 40
    lines = [f"ML Test Score of this deployment ({report.rubric.reference})", ""]
    for section in report.sections:
        lines.append(f"{section.section.title}: {_points(section.total)} of {len(section.tests)}")
        lines.append(f"  {'id':<16}  {'points':>6}  {'status':<10}  test")
        lines.append(f"  {'-' * 16}  {'-' * 6}  {'-' * 10}  {'-' * (width - len(indent))}")
        for score in section.tests:
            test = score.test
            status = f"{test.status}!" if score.problems else test.status
            lines.append(f"  {test.id:<16}  {_points(score.points):>6}  {status:<10}  {test.name}")
            details = [test.how]
            details += [f"evidence: {item.describe()}" for item in test.evidence]
            details += [f"NOT SCORED: {problem}" for problem in score.problems]
            for detail in details:
                wrapped = textwrap.wrap(detail, width, initial_indent=indent, subsequent_indent=indent + "  ")
                lines.extend(wrapped)
        lines.append("")
    sums = ", ".join(f"{section.section.id} {_points(section.total)}" for section in report.sections)
    lines.append(f"section sums: {sums}")
    lines.append(f"total: {_points(report.total)} of {sum(len(s.tests) for s in report.sections)}")
    lines.append(f"final ML Test Score (the minimum of the section sums): {_points(report.final)}")
    if report.problems:
        lines.append(f"{len(report.problems)} piece(s) of evidence did not hold, so those tests score 0 "
                     "until the rubric or the repository is fixed:")
        lines.extend(f"  {problem}" for problem in report.problems)
    return "\n".join(lines)


def report_json(report: ScoreReport) -> str:
    """Return the report as JSON: every test with its points and evidence, the sums and the score."""
    return json.dumps({
        "reference": report.rubric.reference,
        "sections": [
            {
                "id": section.section.id,
                "title": section.section.title,
                "score": section.total,
                "tests": [
                    {
                        "id": score.test.id,
                        "name": score.test.name,
                        "status": score.test.status,
                        "points": score.points,
                        "how": score.test.how,
                        "evidence": [{"file": e.file, "contains": e.contains} for e in score.test.evidence],
                        "problems": list(score.problems),
                    }
                    for score in section.tests
                ],
            }
            for section in report.sections
        ],
        "total": report.total,
        "final": report.final,
    }, indent=2)
