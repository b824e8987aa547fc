"""Matplotlib figures to PNG bytes, one way for every plot the UI shows and the files beside the
data (the worst-module plots, station charts, capture-plan study, spatial anomaly maps).

The daily figures (five a capture day) are drawn with three habits that keep each one at
~40-50 ms (a station chart ~170 ms): margins fixed in inches (:func:`set_margins`) rather than
``tight_layout``'s measuring draw; titles placed at ``y=1.0``, so matplotlib does not measure the
axes' tick labels to lift a title above them (none is drawn above these axes: the same pixels);
and one draw per save (:func:`figure_png`).

A step that draws two figures draws them at once, one in this process and one in a helper
process (:func:`draw_two`), when a batch started the helper (:func:`start_helper`: a command-line
``pipeline run`` over more than one day); otherwise one after the other, here."""

from __future__ import annotations

import atexit
import io
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from sensorfleet.parallel import Helper, available_cores

DPI = 100
"""Dots per inch of every figure written (a 6.4 x 4.8 in figure is 640 x 480 px)."""


def figure_png(fig: Any, dpi: int = DPI) -> bytes:
    """PNG bytes of the matplotlib ``fig`` (laid out already), which is then closed.

    A figure laid out by ``tight_layout`` keeps a placeholder layout engine, and matplotlib then
    runs a whole layout draw before the real one: it is dropped (the same pixels, ~20 % less time
    for a one-axes figure). A figure with a live layout engine (constrained) keeps it.
    """
    import matplotlib.pyplot as plt
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    if isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine):
        fig.set_layout_engine(None)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def set_margins(fig: Any, left: float, right: float, bottom: float, top: float, **spacing: float) -> None:
    """Fixed margins around ``fig``'s axes, in inches (room for tick labels, axis labels and
    titles), instead of ``tight_layout``'s measuring pass (a whole draw of the figure's text).
    ``spacing``: ``wspace`` / ``hspace`` between subplots, as fractions of an axes' size."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height,
                        **spacing)


_helper: list[Helper] = []


def _warm_up() -> None:
    """A helper's start: matplotlib (Agg) imported and its font cache loaded by a tiny figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.set_title("0.5")
    figure_png(fig)


def start_helper() -> bool:
    """Start the drawing helper process of this batch (once; needs two cores this process may
    use); True when one runs. Stopped by :func:`stop_helper` or when the process exits."""
    if not _helper and available_cores() >= 2:
        _helper.append(Helper(warm=_warm_up))
        atexit.register(stop_helper)
    return bool(_helper)


def stop_helper() -> None:
    """Stop the drawing helper (after the figures handed to it); nothing when none runs."""
    while _helper:
        _helper.pop().close()


Figure = tuple[Callable[..., bytes], Sequence[Any], Mapping[str, Any]]
"""A figure to draw: a module-level function returning PNG bytes, its arguments and keywords."""


def draw_two(first: Figure, second: Figure) -> tuple[bytes, bytes]:
    """The PNG bytes of two figures: ``first`` drawn by the helper process while this one draws
    ``second`` (one after the other, here, without a helper). The arguments must be picklable
    (frames, arrays, numbers, text). A figure that fails raises its error here, as if drawn here;
    a helper that died is replaced by drawing ``first`` here."""
    fn, args, kwargs = first
    handed = None
    if _helper:
        try:
            handed = _helper[0].submit(fn, *args, **kwargs)
        except (BrokenProcessPool, RuntimeError):  # dead or shut down: draw here
            stop_helper()
    other = second[0](*second[1], **second[2])
    if handed is not None:
        try:
            return handed.result(), other
        except BrokenProcessPool:
            stop_helper()
    return fn(*args, **kwargs), other
