import pytest

from common.records import MAX_TITLE_CHARS, InvalidRecord, headline_id, make_headline
from workers.annotate.llm_schema import companies_schema, parse_answer, resolve_style, response_format


def test_headline_id_is_stable_hash_of_text():
    a = make_headline({"title": "Apple  Beats\tEstimates", "date": "2020-01-02 00:00:00 UTC"}, "r1")
    b = make_headline({"title": "Apple Beats Estimates"}, "r2")
    assert a.id == b.id == headline_id("Apple Beats Estimates")
    assert a.date == "2020-01-02"


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"title": "   "}, "title", "empty"),
        ({"date": "2020-01-01"}, "title", "missing"),
        ({"title": None}, "title", "missing"),
        ({"title": "x" * (MAX_TITLE_CHARS + 1)}, "title", "longer than"),
        ({"title": 123}, "title", "expected text"),
    ],
)
def test_bad_records_name_record_and_field(row, field, reason):
    with pytest.raises(InvalidRecord) as ei:
        make_headline(row, "sample.csv#7")
    assert ei.value.record == "sample.csv#7" and ei.value.field == field
    assert reason in str(ei.value) and "sample.csv#7" in str(ei.value)


def test_non_utf8_bytes_and_control_chars_are_cleaned():
    h = make_headline({"title": b"Caf\xe9 Holdings\x00 Rises"}, "r")
    assert h.text == "Caf\ufffd Holdings Rises"


def test_parse_answer_valid_invalid_and_repaired():
    ok, why, warn = parse_answer('{"result": ["A"], "normalized_result": ["Agilent"]}')
    assert ok and ok.normalized_result == ["Agilent"] and why is None and warn is None
    bad, why, _ = parse_answer('{"result": ["Apple", ')
    assert bad is None and "Invalid JSON" in why
    bad, why, _ = parse_answer('{"companies": ["Apple"]}')
    assert bad is None and "result" in why
    fixed, why, warn = parse_answer('{"result": ["Apple", "Tesla"], "normalized_result": ["Apple Inc."]}')
    assert fixed.normalized_result == ["Apple Inc.", "Tesla"] and why is None and "2 items" in warn


def test_response_format_per_backend():
    s = companies_schema(5)
    assert s["properties"]["result"]["maxItems"] == 5
    assert response_format("llama.cpp", s) == {"type": "json_object", "schema": s}
    assert response_format("tgi", s) == {"type": "json", "value": s}
    assert response_format("openai", s)["json_schema"]["schema"] == s
    assert response_format("none", s) is None
    assert resolve_style("auto", "http://127.0.0.1:8080") == "llama.cpp"
    assert resolve_style("auto", "https://xyz.endpoints.huggingface.cloud") == "tgi"
    assert resolve_style("auto", "https://api.example.com") == "openai"
