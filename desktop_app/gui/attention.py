"""The Show-Attend-Tell picture: where the model looked for one word, as a heat-map over the photo."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPainter, QPixmap


def heat_colours(values: np.ndarray) -> np.ndarray:
    """[H,W] in 0..1 -> [H,W,4] RGBA uint8: transparent blue (unseen) to opaque red-yellow (looked at)."""
    v = np.clip(values, 0.0, 1.0)
    rgba = np.empty((*v.shape, 4), np.uint8)
    rgba[..., 0] = (255 * np.clip(2 * v, 0, 1)).astype(np.uint8)
    rgba[..., 1] = (255 * np.clip(2 * v - 1, 0, 1)).astype(np.uint8)
    rgba[..., 2] = (255 * np.clip(1 - 2 * v, 0, 1) * 0.6).astype(np.uint8)
    rgba[..., 3] = (40 + 170 * v).astype(np.uint8)
    return rgba


def overlay(photo: QPixmap, weights: np.ndarray) -> QPixmap:
    """The photo with one word's attention weights (N = side*side grid cells) blended on top."""
    side = int(round(np.sqrt(weights.size)))
    grid = weights.reshape(side, side).astype(np.float32)
    grid = grid / grid.max() if grid.max() > 0 else grid
    rgba = np.ascontiguousarray(heat_colours(grid))
    small = QImage(rgba.data, side, side, 4 * side, QImage.Format.Format_RGBA8888).copy()
    heat = small.scaled(photo.size(), Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation)
    result = QPixmap(photo)
    painter = QPainter(result)
    painter.drawImage(0, 0, heat)
    painter.end()
    return result
