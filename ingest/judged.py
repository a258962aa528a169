"""What a delivery's rows were judged under: a digest of its source's declaration and of the code
that stages, checks and pseudonymises rows. Replay lands again only a delivery judged under
other rules than today's: replaying twice with nothing changed lands nothing twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from ingest.schemas import Source

# The modules whose code decides what lands, what is quarantined, and with which reasons.
JUDGING_CODE = ("ingest.readers", "ingest.stage", "ingest.check", "ingest.rules", "ingest.pseudonymise", "linli.standards")

# What a declaration says that does not change the judgement: the words for people.
WORDING = ("description", "owner")


def _declaration(value) -> object:
    if dataclasses.is_dataclass(value):
        return [(f.name, _declaration(getattr(value, f.name))) for f in dataclasses.fields(value) if f.name not in WORDING]
    if isinstance(value, (tuple, list)):
        return [_declaration(v) for v in value]
    if isinstance(value, dict):
        return sorted((k, _declaration(v)) for k, v in value.items())
    return value


@cache
def _code() -> bytes:
    return b"".join(Path(find_spec(module).origin).read_bytes() for module in JUDGING_CODE)


def rules_digest(source: Source) -> str:
    return hashlib.sha256(repr(_declaration(source)).encode() + _code()).hexdigest()[:16]
