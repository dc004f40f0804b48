"""SageMaker's data-capture and ground-truth records, read the same way by the monitor's job and DeployApproved's
shadow test. Standard library only.

A capture record is one JSON line (SageMaker developer guide, "Capture data from real-time endpoint"):
captureData.endpointInput / endpointOutput hold the request's and the answer's text (`data`, base64 when `encoding`
is BASE64), eventMetadata the event's id, the request's InferenceId (`inferenceId`, when the client passed one) and
`inferenceTime`. A ground-truth record (the guide's "Ingest ground truth labels" format) holds one label per row of
a request in groundTruthData and that request's InferenceId as eventMetadata.eventId. A malformed record raises
ValueError, KeyError or IndexError; callers name the file and line.
"""
from __future__ import annotations

import base64
import csv
import io


def payload(part: dict) -> str:
    """The text of a capture's endpointInput or endpointOutput, or of a ground-truth record's groundTruthData."""
    data = part.get("data", "")
    return base64.b64decode(data).decode() if part.get("encoding") == "BASE64" else data


def csv_rows(text: str) -> list[list[str]]:
    """The non-empty CSV rows of a text."""
    return [row for row in csv.reader(io.StringIO(text)) if row]


def request_id(record: dict) -> str:
    """What joins a captured request with its ground truth: its InferenceId, else the capture's event id."""
    meta = record.get("eventMetadata", {})
    return meta.get("inferenceId") or meta.get("eventId")


def ground_truth(record: dict) -> tuple[str, list[str]]:
    """A ground-truth record's request id and its labels, one per row of the request, spaces around them removed."""
    return record["eventMetadata"]["eventId"], [row[0].strip() for row in csv_rows(payload(record["groundTruthData"]))]
