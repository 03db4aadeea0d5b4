from __future__ import annotations

import numpy as np

from pcb_inspect.inspect.annotate import contact_sheet, draw_inspection
from pcb_inspect.inspect.records import Defect, GroundTruth, Verdict


def test_boxes_labels_and_banner_are_drawn() -> None:
    board = np.full((200, 300), 255, np.uint8)
    defects = [Defect("open", 0.9, (10, 10, 40, 40)), Defect("spur", 0.8, (270, 150, 300, 200))]
    picture = draw_inspection(board, defects, Verdict.FAIL, "b1", [GroundTruth("open", (12, 12, 38, 38))])
    assert picture.shape == (236, 300, 3)
    assert tuple(picture[5, 5]) == (30, 30, 220)  # red FAIL banner
    box_edge = picture[36 + 25, 10]
    assert tuple(box_edge) == (0, 0, 255)  # the open's colour on its box
    # a label near the right edge is moved inside the picture, so the right-most column is coloured
    assert (picture[36:, -1] != picture[36 + 100, 150]).any()


def test_contact_sheet_tiles_everything() -> None:
    tiles = [np.zeros((100, 100, 3), np.uint8)] * 5
    sheet = contact_sheet(tiles, columns=4, tile=50)
    assert sheet.shape == (100, 200, 3)
