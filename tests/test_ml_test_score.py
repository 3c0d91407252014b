"""The ML Test Score: the shipped rubric, the arithmetic, evidence checks and the command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamrec_spark.cli import main
from streamrec_spark.errors import ConfigError
from streamrec_spark.ml_test_score import (
    SECTION_IDS,
    load_rubric,
    score_rubric,
)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "conf" / "ml_test_score.yaml"


def write_rubric(folder: Path, statuses: dict[str, list[str]]) -> Path:
    """Write a rubric whose tests have ``statuses`` per section.

    Each automated or manual test gets the evidence file ``evidence/<test id>.txt``, created
    with the text ``marker`` that its evidence requires.
    """
    lines = ["reference: test rubric", "sections:"]
    for section in SECTION_IDS:
        lines += [f"  - id: {section}", f"    title: {section.title()}", "    tests:"]
        for number, status in enumerate(statuses[section], start=1):
            test_id = f"{section}-{number}"
            lines += [f"      - id: {test_id}", f"        name: test {number}", f"        status: {status}",
                      "        how: as the test says"]
            if status != "missing":
                lines.append(f"        evidence: [{{file: evidence/{test_id}.txt, contains: marker}}]")
                target = folder / "evidence" / f"{test_id}.txt"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("the marker is here\n")
    path = folder / "rubric.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def statuses(automated: int, manual: int) -> list[str]:
    return ["automated"] * automated + ["manual"] * manual + ["missing"] * (7 - automated - manual)


# --- the shipped rubric -------------------------------------------------------------------


def test_shipped_rubric_has_28_tests():
    rubric = load_rubric(SHIPPED)

    assert [section.id for section in rubric.sections] == list(SECTION_IDS)
    assert [len(section.tests) for section in rubric.sections] == [7, 7, 7, 7]
    assert len({test.id for section in rubric.sections for test in section.tests}) == 28


def test_shipped_evidence_holds_in_repository():
    report = score_rubric(load_rubric(SHIPPED), ROOT)

    assert report.problems == ()


def test_shipped_score_is_minimum_of_sections():
    report = score_rubric(load_rubric(SHIPPED), ROOT)
    sums = [section.total for section in report.sections]

    assert report.final == min(sums)
    assert report.total == sum(sums)


# --- arithmetic on hand-computed cases ------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "sums", "total", "final"),
    [
        # (automated, manual) per section: data, model, infrastructure, monitoring
        ([(3, 2), (0, 0), (0, 7), (7, 0)], [4.0, 0.0, 3.5, 7.0], 14.5, 0.0),
        ([(1, 1), (2, 0), (0, 4), (7, 0)], [1.5, 2.0, 2.0, 7.0], 12.5, 1.5),
        ([(7, 0), (7, 0), (7, 0), (7, 0)], [7.0, 7.0, 7.0, 7.0], 28.0, 7.0),
        ([(0, 1), (0, 1), (0, 1), (0, 1)], [0.5, 0.5, 0.5, 0.5], 2.0, 0.5),
    ],
)
def test_score_arithmetic(tmp_path, counts, sums, total, final):
    rubric = write_rubric(tmp_path, {s: statuses(a, m) for s, (a, m) in zip(SECTION_IDS, counts)})

    report = score_rubric(load_rubric(rubric), tmp_path)

    assert [section.total for section in report.sections] == sums
    assert report.total == total
    assert report.final == final


def test_missing_evidence_file_drops_test_to_zero(tmp_path):
    counts = {s: statuses(2, 1) for s in SECTION_IDS}
    rubric = write_rubric(tmp_path, counts)
    (tmp_path / "evidence" / "model-1.txt").unlink()

    report = score_rubric(load_rubric(rubric), tmp_path)
    model = report.sections[1]

    assert [score.points for score in model.tests][:3] == [0.0, 1.0, 0.5]
    assert model.total == 1.5
    assert report.final == 1.5
    assert report.problems == ("model-1: evidence file evidence/model-1.txt not found",)


def test_evidence_without_its_text_drops_test_to_zero(tmp_path):
    rubric = write_rubric(tmp_path, {s: statuses(1, 1) for s in SECTION_IDS})
    (tmp_path / "evidence" / "data-2.txt").write_text("renamed\n")

    report = score_rubric(load_rubric(rubric), tmp_path)

    assert report.sections[0].total == 1.0
    assert report.problems == ("data-2: evidence/data-2.txt no longer contains 'marker'",)


# --- invalid rubric files ----------------------------------------------------------------


def test_rubric_problems_reported_with_lines(tmp_path):
    counts = {s: statuses(1, 0) for s in SECTION_IDS}
    counts["model"] = statuses(1, 0)[:6]
    path = write_rubric(tmp_path, counts)
    text = path.read_text()
    text = text.replace("id: data-1\n        name: test 1\n        status: automated",
                        "id: data-1\n        name: test 1\n        status: sometimes", 1)
    text = text.replace("id: monitoring-2", "id: monitoring-3", 1)
    text = text.replace("id: infrastructure-2\n        name: test 2\n        status: missing\n"
                        "        how: as the test says",
                        "id: infrastructure-2\n        name: test 2\n        status: missing\n"
                        "        how: as the test says\n        evidence: [{file: /etc/passwd}]", 1)
    path.write_text(text)

    with pytest.raises(ConfigError) as raised:
        load_rubric(path)

    problems = raised.value.problems
    assert any("'data.tests[0].status' must be one of automated, manual, missing" in p for p in problems)
    assert any("section 'model' has 6 tests; the rubric has 7 per section" in p for p in problems)
    assert any("test id 'monitoring-3' is also used at" in p for p in problems)
    assert any("is missing but lists evidence" in p for p in problems)
    assert any("must be a path inside the repository" in p for p in problems)
    assert all(p.startswith(f"{path}:") for p in problems)


def test_automated_test_without_evidence_is_invalid(tmp_path):
    path = write_rubric(tmp_path, {s: statuses(1, 0) for s in SECTION_IDS})
    path.write_text(path.read_text().replace(
        "        evidence: [{file: evidence/data-1.txt, contains: marker}]\n", "", 1))

    with pytest.raises(ConfigError, match="'data.tests\\[0\\]' is automated but lists no evidence"):
        load_rubric(path)


def test_sections_out_of_order_are_invalid(tmp_path):
    path = write_rubric(tmp_path, {s: statuses(0, 0) for s in SECTION_IDS})
    path.write_text(path.read_text().replace("id: data\n", "id: monitoring\n", 1))

    with pytest.raises(ConfigError, match="the sections must be data, model, infrastructure, monitoring"):
        load_rubric(path)


# --- the command -----------------------------------------------------------------------


def test_command_prints_sections_and_final_score(tmp_path, capsys):
    rubric = write_rubric(tmp_path, {s: statuses(a, m) for s, (a, m) in
                                     zip(SECTION_IDS, [(1, 1), (2, 0), (0, 4), (7, 0)])})

    code = main(["ml-test-score", "--rubric", str(rubric), "--root", str(tmp_path)])
    out = capsys.readouterr().out

    assert code == 0
    assert "Data: 1.5 of 7" in out
    assert "Infrastructure: 2 of 7" in out
    assert "section sums: data 1.5, model 2, infrastructure 2, monitoring 7" in out
    assert "total: 12.5 of 28" in out
    assert "final ML Test Score (the minimum of the section sums): 1.5" in out


@pytest.mark.parametrize(("threshold", "expected"), [("1.5", 0), ("2", 1)])
def test_command_fail_under(tmp_path, capsys, threshold, expected):
    rubric = write_rubric(tmp_path, {s: statuses(a, m) for s, (a, m) in
                                     zip(SECTION_IDS, [(1, 1), (2, 0), (0, 4), (7, 0)])})

    code = main(["ml-test-score", "--rubric", str(rubric), "--root", str(tmp_path),
                 "--fail-under", threshold])

    assert code == expected


def test_command_json_lists_every_test(capsys):
    code = main(["ml-test-score", "--format", "json"])
    document = json.loads(capsys.readouterr().out)

    assert code == 0
    assert [section["id"] for section in document["sections"]] == list(SECTION_IDS)
    assert sum(len(section["tests"]) for section in document["sections"]) == 28
    assert document["final"] == min(section["score"] for section in document["sections"])


def test_command_invalid_rubric_exits_2(tmp_path, capsys):
    path = tmp_path / "rubric.yaml"
    path.write_text("reference: x\nsections: []\n")

    code = main(["ml-test-score", "--rubric", str(path)])

    assert code == 2
    assert "the sections must be data, model, infrastructure, monitoring" in capsys.readouterr().err
