"""The account-purge wiring of template.yaml: the table's stream, exec's event source on it
and the queue that keeps what exec could not purge, checked against what the code expects.

exec answers a stream batch with a partial batch response (`batchItemFailures`) and reads only
the keys of a record. If the mapping did not report batch item failures, Lambda would take a
failed purge for a success and drop it; a wider filter would cost invocations, a narrower one
(or a stream without keys) would never purge. Kept apart from drift.py, which imports
`is_stream_statement` and `account_purge_drift` from here (this module imports nothing of it).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from sources import ROOT, _actions, _refs, _scalars

TABLE = "Table"
FUNCTION = "ExecFunction"
STREAM_READS = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}
# What the S3 adapter's purge calls (ListObjectVersions, DeleteObjects by version id).
PURGE_S3 = {"s3:ListBucketVersions", "s3:DeleteObjectVersion"}


def is_stream_statement(st: dict) -> bool:
    """A statement on the table's stream only (not on the table: no LeadingKeys apply)."""
    res = _scalars(st.get("Resource", []))
    return bool(res) and all(r.endswith(".StreamArn") or "/stream/" in r for r in res)


def _role_statements(template: dict) -> list[dict]:
    role_id = template["Resources"][FUNCTION]["Properties"]["Role"].value
    role_id = role_id if isinstance(role_id, str) else ".".join(role_id)
    role = template["Resources"][role_id.split(".")[0]]["Properties"]
    return [st for p in role.get("Policies", []) for st in p["PolicyDocument"]["Statement"]]


def _profile_filter(root: Path) -> dict:
    """The filter the store's keys imply: a removed `USER#<id>`/`PROFILE` item."""
    users = (root / "crates/bastion-store/src/dynamodb/users.rs").read_text()
    sk = re.search(r'PROFILE_SK: &str = "([^"]+)"', users)
    pk = re.search(r'format!\("([A-Z]+#)\{id\}"\)', users)
    return {
        "eventName": ["REMOVE"],
        "dynamodb": {
            "Keys": {
                "pk": {"S": [{"prefix": pk.group(1) if pk else "?"}]},
                "sk": {"S": [sk.group(1) if sk else "?"]},
            }
        },
    }


def _stream_events(template: dict) -> list[tuple[str, dict]]:
    out = []
    for fid, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for name, ev in (res["Properties"].get("Events") or {}).items():
            if ev.get("Type") == "DynamoDB" and TABLE in _refs(ev["Properties"].get("Stream")):
                out.append((f"{fid}.{name}", ev["Properties"]))
    return out


def _mapping_drift(template: dict, props: dict, root: Path, where: str) -> list[str]:
    drifts = []
    if "ReportBatchItemFailures" not in (props.get("FunctionResponseTypes") or []):
        drifts.append(f"{where}: no ReportBatchItemFailures, so a failed purge would count as done")
    retries = props.get("MaximumRetryAttempts")
    if not isinstance(retries, int) or not 0 <= retries <= 100:
        drifts.append(f"{where}: MaximumRetryAttempts is not a bound between 0 and 100")
    patterns = [f.get("Pattern") for f in (props.get("FilterCriteria") or {}).get("Filters", [])]
    try:
        parsed = [json.loads(p) for p in patterns]
    except (TypeError, ValueError):
        parsed = []
    if parsed != [_profile_filter(root)]:
        drifts.append(f"{where}: its filter is not exactly a profile item's REMOVE")
    dest = (props.get("DestinationConfig") or {}).get("OnFailure") or {}
    queue_ids = _refs(dest.get("Destination"))
    queue = template["Resources"].get(next(iter(queue_ids), ""), {})
    if dest.get("Type") != "SQS" or queue.get("Type") != "AWS::SQS::Queue":
        drifts.append(f"{where}: no SQS on-failure destination")
        return drifts
    qprops = queue.get("Properties", {})
    if not (qprops.get("KmsMasterKeyId") or qprops.get("SqsManagedSseEnabled") is True):
        drifts.append(f"{where}: its on-failure queue is not encrypted")
    qid = next(iter(queue_ids))
    alarmed = any(
        r.get("Type") == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/SQS"
        and qid in _refs(r["Properties"].get("Dimensions"))
        for r in template["Resources"].values()
    )
    if not alarmed:
        drifts.append(f"{where}: no alarm on its on-failure queue")
    sends = any(
        "sqs:SendMessage" in _actions(st) and qid in _refs(st.get("Resource"))
        for st in _role_statements(template)
    )
    if not sends:
        drifts.append(f"{where}: exec's role cannot send to its on-failure queue")
    return drifts


def account_purge_drift(template: dict, root: Path = ROOT) -> list[str]:
    drifts = []
    spec = template["Resources"][TABLE]["Properties"].get("StreamSpecification") or {}
    if spec.get("StreamViewType") != "KEYS_ONLY":
        drifts.append(f"{TABLE}: its stream is not KEYS_ONLY (exec reads the keys; nothing else belongs there)")
    events = _stream_events(template)
    if [w.split(".")[0] for w, _ in events] != [FUNCTION]:
        drifts.append(f"the table's stream feeds {sorted(w for w, _ in events)}, not one {FUNCTION} event")
    for where, props in events:
        drifts += _mapping_drift(template, props, root, where)
    statements = _role_statements(template)
    granted = {a for st in statements for a in _actions(st)}
    for a in sorted(STREAM_READS - {a for st in statements if is_stream_statement(st) for a in _actions(st)}):
        drifts.append(f"{FUNCTION}: its role cannot {a} on the table's stream")
    for a in sorted(PURGE_S3 - granted):
        drifts.append(f"{FUNCTION}: its role does not grant {a}, which the workspace purge calls")
    return drifts
