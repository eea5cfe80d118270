"""LSTM caption decoder with soft (Bahdanau) attention, after "Show, Attend and Tell".

Split into ``init_state`` (once per photo) and ``step`` (once per word) so the
same two functions train with teacher forcing, decode in evaluation, and export
as the two ONNX graphs the app drives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class DecoderConfig:
    vocab_size: int
    feature_dim: int = 1280
    memory_dim: int = 512
    embed_dim: int = 256
    hidden_dim: int = 512
    attention_dim: int = 256
    dropout: float = 0.5

    def to_dict(self) -> dict:
        return asdict(self)


class CaptionDecoder(nn.Module):
    def __init__(self, config: DecoderConfig):
        super().__init__()
        self.config = c = config
        # Project the 1280-channel grid once per photo: the LSTM then reads a
        # smaller context at every word, which keeps CPU training fast.
        self.memory_proj = nn.Sequential(nn.Linear(c.feature_dim, c.memory_dim), nn.ReLU())
        self.key_proj = nn.Linear(c.memory_dim, c.attention_dim)
        self.query_proj = nn.Linear(c.hidden_dim, c.attention_dim)
        self.score = nn.Linear(c.attention_dim, 1)
        self.init_h = nn.Linear(c.memory_dim, c.hidden_dim)
        self.init_c = nn.Linear(c.memory_dim, c.hidden_dim)
        self.gate = nn.Linear(c.hidden_dim, c.memory_dim)  # the paper's beta: how much to look
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim)
        self.lstm = nn.LSTMCell(c.embed_dim + c.memory_dim, c.hidden_dim)
        self.dropout = nn.Dropout(c.dropout)
        self.output = nn.Linear(c.hidden_dim, c.vocab_size)

    def init_state(self, features: torch.Tensor):
        """features [B,N,C] -> memory [B,N,D], keys [B,N,A], h, c [B,H]."""
        memory = self.memory_proj(features)
        keys = self.key_proj(memory)
        mean = memory.mean(dim=1)
        return memory, keys, torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def attend(self, h: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor):
        energy = self.score(torch.tanh(keys + self.query_proj(h).unsqueeze(1))).squeeze(2)  # [B,N]
        alpha = torch.softmax(energy, dim=1)
        context = (alpha.unsqueeze(2) * memory).sum(dim=1)
        return torch.sigmoid(self.gate(h)) * context, alpha

    def step(self, tokens: torch.Tensor, h: torch.Tensor, c: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor):
        """One word: previous tokens [B] -> logits [B,V], h, c, attention [B,N]."""
        context, alpha = self.attend(h, memory, keys)
        h, c = self.lstm(torch.cat([self.embedding(tokens), context], dim=1), (h, c))
        return self.output(self.dropout(h)), h, c, alpha

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths: torch.Tensor,
                photo_of: torch.Tensor | None = None):
        """Teacher forcing. captions [B,T] start with <start>; lengths count <start>..<end>.

        ``photo_of`` [B] maps each caption to its row of ``features``, so a photo's
        five captions share one pass of the per-photo projections (the costliest
        part of a step on a CPU); without it, row i of features goes with caption i.

        Rows must be sorted by length, longest first: at step t only the rows
        still inside their caption are computed (sgrvinod's shrinking batch).
        Returns logits [B,T-1,V] predicting captions[:,1:], and attention [B,T-1,N].
        """
        memory, keys, h, c = self.init_state(features)
        if photo_of is not None:
            memory, keys, h, c = memory[photo_of], keys[photo_of], h[photo_of], c[photo_of]
        batch, steps = captions.shape[0], int(lengths.max()) - 1
        logits = memory.new_zeros(batch, steps, self.config.vocab_size)
        alphas = memory.new_zeros(batch, steps, memory.shape[1])
        decode_lengths = (lengths - 1).tolist()
        for t in range(steps):
            rows = sum(length > t for length in decode_lengths)
            out, h_new, c_new, alpha = self.step(captions[:rows, t], h[:rows], c[:rows], memory[:rows], keys[:rows])
            h = torch.cat([h_new, h[rows:]]) if rows < batch else h_new
            c = torch.cat([c_new, c[rows:]]) if rows < batch else c_new
            logits[:rows, t] = out
            alphas[:rows, t] = alpha
        return logits, alphas


class DecoderInit(nn.Module):
    """ONNX graph ``decoder_init``: features -> memory, keys, h, c."""

    def __init__(self, decoder: CaptionDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, features):
        return self.decoder.init_state(features)


class DecoderStep(nn.Module):
    """ONNX graph ``decoder_step``: tokens, h, c, memory, keys -> log_probs, h, c, alpha."""

    def __init__(self, decoder: CaptionDecoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, tokens, h, c, memory, keys):
        logits, h, c, alpha = self.decoder.step(tokens, h, c, memory, keys)
        return torch.log_softmax(logits, dim=1), h, c, alpha
