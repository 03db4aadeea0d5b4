from __future__ import annotations

import json

import pytest

from pcb_inspect.inspect.errors import ModelError
from pcb_inspect.models.contract import CONTRACT_VERSION, ModelContract


def test_round_trip_keeps_every_field() -> None:
    c = ModelContract(thresholds={"open": 0.7}, proposals={"pad_px": 11}, metrics={"f_score": 0.97}, arch="small")
    back = ModelContract.from_json(c.to_json())
    assert back == c
    assert back.threshold("open") == 0.7 and back.threshold("short") == 0.5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(class_names=["a", "b"]), "class_names"),
        (lambda d: d.update(input_size=4), "input_size 4"),
        (lambda d: d.update(thresholds={"solder": 0.5}), "threshold solder"),
        (lambda d: d.update(thresholds={"open": 1.5}), "threshold open=1.5"),
        (lambda d: d.update(surprise=1), "unknown contract fields"),
        (lambda d: d.update(contract_version=CONTRACT_VERSION + 1), "newer than this pcb-inspect"),
    ],
)
def test_bad_contracts_are_refused_with_the_field(mutate, message: str) -> None:  # noqa: ANN001
    data = json.loads(ModelContract().to_json())
    mutate(data)
    with pytest.raises(ModelError, match=message):
        ModelContract.from_json(json.dumps(data), where="m.onnx")


def test_not_json() -> None:
    with pytest.raises(ModelError, match="m.onnx: metadata .* is not valid JSON"):
        ModelContract.from_json("{nope", where="m.onnx")
