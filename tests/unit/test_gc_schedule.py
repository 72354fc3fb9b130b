"""The dashboard's own schedule of full garbage collections (app._FullCollections): held off while any app holds
them, Python's thresholds given back when the last one lets go, and only where the third threshold means that."""

from __future__ import annotations

import gc
import sys

from overlaytui.app import HOLD_FULL_GC, _FullCollections


def test_held_while_any_app_holds_and_given_back_by_the_last():
    before = gc.get_threshold()
    try:
        _FullCollections.hold()
        assert gc.get_threshold() == (before[0], before[1], 1 << 30)
        _FullCollections.hold()  # a second app in the same process (a benchmark, serve's tests)
        _FullCollections.release()
        assert gc.get_threshold()[2] == 1 << 30  # the first still holds
        _FullCollections.release()
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
        _FullCollections.held = 0


def test_not_held_where_python_has_no_third_threshold():
    assert HOLD_FULL_GC == (sys.version_info < (3, 14))
