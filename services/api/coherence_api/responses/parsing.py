"""Reading a responses body: size limit, content type, and parsing into `RawResponse`s.

JSON, NDJSON and long CSV all become the same `RawResponse` objects (a response dict and a
locator for its parts), so one validator checks them all and errors point into the body as sent:
a JSON pointer for JSON, a line (and pointer within the line) for NDJSON, a line and column for CSV.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from fastapi import Request

from coherence_api.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType, pointer
from coherence_api.responses.schemas import BATCH_FIELDS
from coherence_api.responses.validation import Locator, RawResponse, json_locator

JSON = "application/json"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
MEDIA_TYPES = (JSON, NDJSON, CSV)
CSV_HEADER = ["respondent", "unit", "target", "item", "value"]


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The body, refusing (413) as soon as it exceeds `max_bytes`, without buffering more."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The body is larger than the limit of {max_bytes} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", JSON).split(";")[0].strip().lower()


def check_batch_size(count: int, max_responses: int, location: dict[str, Any]) -> None:
    if count > max_responses:
        raise InvalidInput(
            f"The batch holds {count} responses; the limit is {max_responses} per request.",
            errors=[{**location, "detail": f"at most {max_responses} responses per batch"}],
        )


def parse_json_batch(body: bytes, *, max_responses: int) -> list[RawResponse]:
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            "The body is not valid JSON.", errors=[{"pointer": "", "detail": str(exc)}]
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("responses"), list):
        raise InvalidInput(
            "The body must be an object with a 'responses' array.",
            errors=[{"pointer": "/responses", "detail": "required: an array of responses"}],
        )
    extra = [k for k in document if k not in BATCH_FIELDS]
    if extra:
        raise InvalidInput(
            "Unknown fields in the body.",
            errors=[{"pointer": pointer(k), "detail": "unknown field"} for k in extra],
        )
    responses = document["responses"]
    check_batch_size(len(responses), max_responses, {"pointer": "/responses"})
    return [RawResponse(r, json_locator("responses", i)) for i, r in enumerate(responses)]


def _line_locator(line: int) -> Locator:
    def locate(*path: object) -> dict[str, Any]:
        return {"line": line, "pointer": pointer(*path)}

    return locate


def parse_ndjson_batch(body: bytes, *, max_responses: int) -> list[RawResponse]:
    raws: list[RawResponse] = []
    errors: list[dict[str, Any]] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            raws.append(RawResponse(orjson.loads(line), _line_locator(number)))
        except orjson.JSONDecodeError as exc:
            errors.append({"line": number, "pointer": "", "detail": f"not valid JSON: {exc}"})
    check_batch_size(len(raws) + len(errors), max_responses, {"line": 1})
    if errors:
        raise InvalidInput(f"{len(errors)} malformed line(s); nothing was stored", errors=errors)
    return raws


class _CsvResponse:
    """The rows of one respondent, assembled into a response with a line for every part."""

    def __init__(self, respondent: str, unit: str, line: int) -> None:
        self.data: dict[str, Any] = {"respondent": respondent, "unit": unit}
        self.lines: dict[tuple[str, ...], int] = {(): line, ("respondent",): line, ("unit",): line}

    def locate(self, *path: object) -> dict[str, Any]:
        key = tuple(str(p) for p in path)
        while key not in self.lines:
            key = key[:-1]
        columns: dict[tuple[str, ...], str] = {("respondent",): "respondent", ("unit",): "unit"}
        column = columns.get(key)
        if len(key) == 2 and key[0] == "about":
            column = "target"
        return {"line": self.lines[key], **({"column": column} if column else {})}

    def add(self, target: str, item: str, value: Any, line: int) -> str | None:
        if target:
            items = self.data.setdefault("about", {}).setdefault(target, {})
            self.lines.setdefault(("about", target), line)
            path: tuple[str, ...] = ("about", target, item)
        else:
            items = self.data.setdefault("answers", {})
            path = ("answers", item)
        if item in items:
            return f"item '{item}' for this target is given twice (line {self.lines[path]})"
        items[item] = value
        self.lines[path] = line
        return None


def _csv_value(text: str) -> Any:
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        return text  # the validator reports it as not an integer, at its line


def parse_csv_batch(body: bytes, *, max_responses: int) -> list[RawResponse]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "The CSV body is not UTF-8.", errors=[{"line": 1, "detail": str(exc)}]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    errors: list[dict[str, Any]] = []
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != CSV_HEADER:
        raise InvalidInput(
            "The CSV header must be 'respondent,unit,target,item,value'.",
            errors=[{"line": 1, "detail": f"expected header {','.join(CSV_HEADER)}"}],
        )
    responses: list[_CsvResponse] = []
    current: _CsvResponse | None = None
    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(CSV_HEADER):
                errors.append({"line": line, "detail": f"expected 5 columns, found {len(row)}"})
                continue
            respondent, unit, target, item, value = (cell.strip() for cell in row)
            if not respondent or not item:
                column = "respondent" if not respondent else "item"
                errors.append({"line": line, "column": column, "detail": "required"})
                continue
            if current is None or respondent != current.data["respondent"]:
                current = _CsvResponse(respondent, unit, line)
                responses.append(current)
            elif unit != current.data["unit"]:
                errors.append(
                    {
                        "line": line,
                        "column": "unit",
                        "detail": f"this respondent's home unit was '{current.data['unit']}' "
                        f"on line {current.lines[()]}",
                    }
                )
                continue
            problem = current.add(target, item, _csv_value(value), line)
            if problem:
                errors.append({"line": line, "column": "item", "detail": problem})
    except csv.Error as exc:
        errors.append({"line": reader.line_num, "detail": f"malformed CSV: {exc}"})
    check_batch_size(len(responses), max_responses, {"line": 1})
    if errors:
        raise InvalidInput(f"{len(errors)} malformed row(s); nothing was stored", errors=errors)
    return [RawResponse(r.data, r.locate) for r in responses]


def parse_batch(request: Request, body: bytes, *, max_responses: int) -> list[RawResponse]:
    kind = media_type(request)
    if kind == JSON:
        return parse_json_batch(body, max_responses=max_responses)
    if kind == NDJSON:
        return parse_ndjson_batch(body, max_responses=max_responses)
    if kind == CSV:
        return parse_csv_batch(body, max_responses=max_responses)
    raise UnsupportedMediaType(f"Send the batch as one of {', '.join(MEDIA_TYPES)}; got '{kind}'.")
