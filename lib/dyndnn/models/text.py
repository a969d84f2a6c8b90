"""Small text classifiers for RCT's NLP task: token ids in, class logits out.

Built only from layers RCT converts (``Embedding``, ``Conv1d``, ``Linear``) plus fp32
normalisation, so the same three training methods apply to text as to images.

- ``conv``: embedding, a few 1-D convolutions (BN, ReLU), max over positions, a classifier
  (Kim 2014's sentence CNN, stacked).
- ``transformer``: embedding plus learned positions, encoder layers (multi-head attention from
  plain ``nn.Linear`` projections, a ReLU feed-forward, pre-LayerNorm), mean over the tokens.

>>> net = text_network("conv", vocab_size=500, num_classes=26, seq_len=32)
>>> net(torch.randint(0, 500, (4, 32))).shape
torch.Size([4, 26])
>>> text_network("transformer", 500, 26, 32)(torch.randint(0, 500, (4, 32))).shape
torch.Size([4, 26])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TEXT_MODELS = ("conv", "transformer")
PAD = 0  # the vocabulary's padding id


class TextConvNet(nn.Module):
    """Embedding, ``layers`` x (Conv1d, BN, ReLU), max over positions, dropout, Linear."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 64,
                 channels: int = 128, layers: int = 2, kernel: int = 3,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        blocks: list[nn.Module] = []
        width = embed_dim
        for _ in range(layers):
            blocks += [nn.Conv1d(width, channels, kernel, padding=kernel // 2),
                       nn.BatchNorm1d(channels), nn.ReLU()]
            width = channels
        self.body = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, ids: Tensor) -> Tensor:  # noqa: D102
        x = self.embedding(ids).transpose(1, 2)  # (N, E, L): channels first for Conv1d
        features = self.body(x).amax(dim=2)
        return self.classifier(self.dropout(features))


class SelfAttention(nn.Module):
    """Multi-head self-attention on plain ``nn.Linear`` projections; padding is masked."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:  # noqa: D102
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.heads, dim // self.heads).unbind(2)
        mask = ~pad[:, None, None, :]  # True where attention may look
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2),
                                           v.transpose(1, 2), attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(n, length, dim))


class EncoderLayer(nn.Module):
    """Pre-LayerNorm transformer encoder layer."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.ff1, self.ff2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:  # noqa: D102
        x = x + self.dropout(self.attention(self.norm1(x), pad))
        return x + self.dropout(self.ff2(F.relu(self.ff1(self.norm2(x)))))


class TextTransformer(nn.Module):
    """Embedding + learned positions, ``layers`` encoder layers, masked mean, Linear."""

    def __init__(self, vocab_size: int, num_classes: int, seq_len: int, dim: int = 64,
                 heads: int = 4, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.position = nn.Parameter(torch.randn(seq_len, dim) / math.sqrt(dim))
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, 2 * dim, dropout)
                                    for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, ids: Tensor) -> Tensor:  # noqa: D102
        pad = ids == PAD
        pad = pad & ~pad.all(1, keepdim=True)  # an empty text attends to its padding
        x = self.embedding(ids) + self.position[: ids.shape[1]]
        for layer in self.layers:
            x = layer(x, pad)
        keep = (~pad).unsqueeze(2).float()
        pooled = (self.norm(x) * keep).sum(1) / keep.sum(1)
        return self.classifier(pooled)


def text_network(kind: str, vocab_size: int, num_classes: int, seq_len: int,
                 width: float = 1.0) -> nn.Module:
    """The text model ``kind`` (``conv`` or ``transformer``); ``width`` scales its channels."""
    if kind == "conv":
        return TextConvNet(vocab_size, num_classes, max(8, round(64 * width)),
                           max(8, round(128 * width)))
    if kind == "transformer":
        return TextTransformer(vocab_size, num_classes, seq_len, max(8, 4 * round(16 * width)))
    raise ValueError(f"text model must be one of {TEXT_MODELS}; got {kind!r}")
