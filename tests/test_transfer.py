"""Pure parts of app delivery: reload variables, the ordered upload hash, tus metadata."""

from __future__ import annotations

import base64
import hashlib
import io

import pytest

from qlikm2m.errors import UsageError
from qlikm2m.reloads import check_weight, parse_variables
from qlikm2m.transfer import PIECE, _metadata, _OrderedHash


def test_variables_parse_name_value_pairs() -> None:
    assert parse_variables(["vRegion=EU", "vNote=a=b", "vEmpty="]) == {
        "vRegion": "EU",
        "vNote": "a=b",
        "vEmpty": "",
    }


@pytest.mark.parametrize(
    ("pairs", "said"),
    [
        (["novalue"], "NAME=VALUE"),
        (["=x"], "NAME=VALUE"),
        (["a=1", "a=2"], "twice"),
        ([f"v{n}=x" for n in range(21)], "At most 20"),
        (["a=" + "x" * 257], "256"),
    ],
)
def test_bad_variables_are_usage_errors(pairs: list[str], said: str) -> None:
    with pytest.raises(UsageError, match=said):
        parse_variables(pairs)


@pytest.mark.parametrize("weight", [0, 11])
def test_weight_outside_1_to_10_is_refused(weight: int) -> None:
    with pytest.raises(UsageError):
        check_weight(weight)


def test_the_upload_hash_is_the_file_s_whatever_was_sent_again() -> None:
    data = bytes(range(256)) * (3 * PIECE // 256 + 7)
    hasher = _OrderedHash()

    def feed(position: int, length: int) -> None:
        buffer = hasher.take()
        buffer[:length] = data[position : position + length]
        hasher.update_at(position, buffer, length)

    feed(0, PIECE)
    feed(PIECE, PIECE)
    feed(PIECE // 2, PIECE)  # a resume from an offset before what was read
    feed(3 * PIECE // 2, PIECE)
    hasher.catch_up(io.BytesIO(data), len(data))

    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_tus_metadata_is_base64_pairs() -> None:
    pairs = dict(part.split(" ") for part in _metadata("sales q3.qvf", 600).split(","))

    assert base64.b64decode(pairs["filename"]).decode() == "sales q3.qvf"
    assert base64.b64decode(pairs["ttl"]).decode() == "600"
