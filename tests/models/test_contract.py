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
        (lambda d: d.update(thresholds={"solder": 0.5}), "threshold for 'solder'"),
        (lambda d: d.update(thresholds={"open": 1.5}), r"thresholds.open 1.5 is not in \(0.0, 1.0\]"),
        (lambda d: d.update(score_threshold=float("nan")), "score_threshold nan is not a number"),
        (lambda d: d.update(score_threshold=0), r"score_threshold 0 is not in \(0.0"),
        (lambda d: d.update(crop_margin=-1), "crop_margin -1 is not in"),
        (lambda d: d.update(crop_margin=2.5), "crop_margin 2.5 is not a whole number"),
        (lambda d: d.update(input_size="48"), "input_size '48' is not a whole number"),
        (lambda d: d.update(nms_iou=1.5), "nms_iou 1.5"),
        (lambda d: d.update(review_band=0.6), "review_band 0.6"),
        (lambda d: d.update(proposals=[1]), "proposals must be a JSON object"),
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
