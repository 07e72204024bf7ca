"""tools/parity.py's comparing and classifying, without LocalStack (that runs in `make parity`)."""
from tools.parity import (
    ABSENT,
    Known,
    diff_records,
    flatten,
    format_table,
    main,
    normalize,
    summarize,
    wording_only,
)

ARN = "arn:aws:states:us-east-1:123456789012:express:echo:run:0b5bd2c4-1c2f-4a4e-9a43-0f0c8f1d2e3a"
KNOWN = [
    Known("history-*", "*", "LocalStack fault", "ignores paging"),
    Known("*", "body.Message", "explained", "own words"),
]


def record(step, status, body):
    return {"step": step, "status": status, "body": body}


def test_normalize_replaces_dates_uuids_and_paging_tokens_only():
    body = {"startDate": "2026-11-26T08:57:49.123000+00:00", "executionArn": ARN,
            "nextToken": "eyJsYXN0SWQiOiAyfQ==", "status": "RUNNING", "count": 3}
    assert normalize(body) == {
        "startDate": "<date>", "executionArn": ARN.rsplit(":", 1)[0] + ":<uuid>",
        "nextToken": "<token>", "status": "RUNNING", "count": 3,
    }
    assert normalize({"nextToken": None}) == {"nextToken": None}


def test_flatten_gives_one_path_per_leaf_and_the_length_of_each_list():
    assert flatten({"events": [{"id": 1}, {"id": 2}], "empty": {}}) == {
        "events.length": 2, "events[0].id": 1, "events[1].id": 2, "empty": {},
    }


def test_diff_reports_status_first_then_changed_missing_and_extra_fields():
    ours = [record("describe", 200, {"status": "ABORTED", "error": "Cancelled"}), record("same", 200, {"a": 1})]
    theirs = [record("describe", 200, {"status": "RUNNING", "inputDetails": {"included": True}}),
              record("same", 200, {"a": 1})]
    assert diff_records(ours, theirs) == [
        {"step": "describe", "field": "body.error", "ours": "Cancelled", "theirs": ABSENT},
        {"step": "describe", "field": "body.inputDetails.included", "ours": ABSENT, "theirs": True},
        {"step": "describe", "field": "body.status", "ours": "ABORTED", "theirs": "RUNNING"},
    ]
    status_change = diff_records([record("x", 410, {"Code": "TaskTimedOut"})], [record("x", 400, {"Code": "InvalidToken"})])
    assert [row["field"] for row in status_change] == ["status", "body.Code"]


def test_dates_and_uuids_alone_make_no_difference():
    ours = [record("start", 201, {"executionArn": ARN, "startDate": "2026-11-26T08:57:49+00:00"})]
    theirs = [record("start", 201, {"executionArn": ARN[:-12] + "ffffffffffff",
                                    "startDate": "2026-11-26T09:01:02.5+00:00"})]
    assert diff_records(ours, theirs) == []


def test_a_step_missing_on_one_side_shows_every_field_absent():
    rows = diff_records([record("redrive", 501, {"Code": "NotImplementedByBackend"})], [])
    assert [(row["field"], row["theirs"]) for row in rows] == [("status", ABSENT), ("body.Code", ABSENT)]


def test_summarize_marks_known_rows_and_everything_else_new():
    rows = [
        {"step": "history-page-1", "field": "body.events.length", "ours": 2, "theirs": 6},
        {"step": "start", "field": "body.Message", "ours": "a", "theirs": "b"},
        {"step": "start", "field": "body.Code", "ours": "X", "theirs": "Y"},
    ]
    assert [(row["verdict"], row["why"]) for row in summarize(rows, KNOWN)] == [
        ("LocalStack fault", "ignores paging"), ("explained", "own words"), ("NEW", ""),
    ]


def test_summarize_folds_extra_rows_of_a_step_and_keeps_new_visible():
    rows = [{"step": "history-page-2", "field": f"body.events[{i}].id", "ours": ABSENT, "theirs": i}
            for i in range(5)]
    rows.append({"step": "describe", "field": "body.error", "ours": "E", "theirs": ABSENT})
    summary = summarize(rows, KNOWN, per_step=2)
    assert [row["field"] for row in summary] == [
        "body.events[0].id", "body.events[1].id",
        "(+3 more: body.events[2].id, body.events[3].id, body.events[4].id)", "body.error",
    ]
    assert [row["verdict"] for row in summary] == ["LocalStack fault"] * 3 + ["NEW"]
    mixed = summarize(rows[:2] + [{"step": "history-page-2", "field": "body.x", "ours": 1, "theirs": 2}],
                      [Known("history-*", "body.events*", "LocalStack fault", "paging")], per_step=2)
    assert mixed[-1]["verdict"] == "NEW"


def test_steps_differing_only_in_message_wording_are_set_apart():
    rows = [
        {"step": "token", "field": "body.Message", "ours": "Invalid Token", "theirs": "InvalidToken"},
        {"step": "stop", "field": "body.Message", "ours": "a", "theirs": "b"},
        {"step": "stop", "field": "status", "ours": 200, "theirs": 400},
    ]
    kept, wording = wording_only(rows)
    assert wording == ["token"]
    assert [row["step"] for row in kept] == ["stop", "stop"]


def test_table_has_one_numbered_line_per_row_and_escapes_pipes():
    rows = summarize([{"step": "s", "field": "body.a", "ours": "x|y", "theirs": ABSENT}], KNOWN)
    table = format_table(rows).splitlines()
    assert table[0] == "| # | step | field | local engine | LocalStack | verdict |"
    assert table[2] == "| 1 | s | body.a | x\\|y | <absent> | NEW |"


def test_without_localstack_the_check_is_skipped_with_exit_status_0(capsys, tmp_path):
    assert main(["--localstack-python", str(tmp_path / "no-python")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("make parity: skipped: LocalStack 4.14.x is not installed")
    assert "Python 3.13" in out
