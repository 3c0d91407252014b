"""A damaged model folder is an invalid input (INVALID_MODEL, exit 3), never a failed check."""

from __future__ import annotations

import json

import pytest

from streamrec_spark.errors import EXIT_INFRASTRUCTURE, InputDataError
from streamrec_spark.models import load_model


@pytest.mark.parametrize(
    ("metadata", "arrays"),
    [
        ({"model_type": "popularity", "params": {}, "window": {}}, b"PK\x03\x04 truncated"),
        ({"model_type": "popularity", "params": {}}, None),
        ([1, 2, 3], None),
    ],
)
def test_damaged_model_folder_is_invalid_model(tmp_path, metadata, arrays):
    (tmp_path / "model.json").write_text(json.dumps(metadata))
    if arrays is not None:
        (tmp_path / "arrays.npz").write_bytes(arrays)
    with pytest.raises(InputDataError) as raised:
        load_model(tmp_path)
    assert raised.value.error_code == "INVALID_MODEL"
    assert raised.value.exit_code == EXIT_INFRASTRUCTURE
    assert "\n" not in str(raised.value)
