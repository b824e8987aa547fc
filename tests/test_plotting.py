"""sensorfleet.plotting: a figure becomes PNG bytes of its size at the house DPI, and is closed."""

from __future__ import annotations

import io

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from sensorfleet.plotting import DPI, figure_png  # noqa: E402


def test_a_figure_becomes_a_png_of_its_size_and_is_closed() -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.plot([0, 1], [0, 1])
    png = figure_png(fig)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (int(6.4 * DPI), int(4.8 * DPI))
    assert not plt.fignum_exists(fig.number)


def _pixels(png: bytes) -> bytes:
    return Image.open(io.BytesIO(png)).convert("RGBA").tobytes()


def _tight_figure() -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [2, 0, 1], "o-", label="a series")
    ax.set_title("a title long enough to need the layout's room")
    ax.set_ylabel("signal (DN)")
    ax.legend()
    fig.tight_layout()
    return fig


def test_a_tight_layout_figure_is_drawn_once_with_the_same_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    reference = _tight_figure()  # matplotlib's own save: its layout draw, then the real one
    buf = io.BytesIO()
    reference.savefig(buf, format="png", dpi=DPI)
    plt.close(reference)
    draws: list[int] = []
    real_draw = FigureCanvasAgg.draw
    monkeypatch.setattr(FigureCanvasAgg, "draw", lambda self: draws.append(1) or real_draw(self))
    png = figure_png(_tight_figure())
    assert _pixels(png) == _pixels(buf.getvalue())
    assert len(draws) == 1


def test_a_constrained_layout_is_kept() -> None:
    fig, ax = plt.subplots(figsize=(4, 3), layout="constrained")
    ax.set_ylabel("a label the layout makes room for")
    figure_png(fig)
    assert fig.get_layout_engine() is not None


def line_png(slope: float, title: str = "") -> bytes:
    """A module-level figure function (the helper process imports it by name)."""
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, slope])
    ax.set_title(title)
    return figure_png(fig)


def failing_png(reason: str) -> bytes:
    raise ValueError(reason)


def test_draw_two_gives_the_same_pngs_with_and_without_the_helper() -> None:
    from sensorfleet import plotting

    first, second = (line_png, (2.0,), {"title": "first"}), (line_png, (0.5,), {"title": "second"})
    alone = plotting.draw_two(first, second)
    assert alone == (line_png(2.0, title="first"), line_png(0.5, title="second"))
    started = plotting.start_helper()
    try:
        assert started == (plotting.available_cores() >= 2)
        assert plotting.draw_two(first, second) == alone  # the helper's figure is the same bytes
        with pytest.raises(ValueError, match="no data"):  # a figure's error reaches the caller
            plotting.draw_two((failing_png, ("no data",), {}), second)
        if started:  # a helper that died: its figure is drawn here instead
            pool = plotting._helper[0]._pool  # noqa: SLF001 - killing the worker is the case
            for process in list(pool._processes.values()):  # noqa: SLF001
                process.kill()
                process.join()
            assert plotting.draw_two(first, second) == alone
            assert not plotting._helper  # noqa: SLF001 - dropped, not used again
    finally:
        plotting.stop_helper()
    assert not plotting._helper  # noqa: SLF001
