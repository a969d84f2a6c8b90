"""The names of a model's input and output in every engine's graphs, and of its LiteRT signatures.

A board's code feeds ``images`` (float32, N x C x H x W) and reads ``logits`` whatever the
engine, so the names live here, apart from the writers that need torch or onnx (whose import
alone costs half a second, docs/processes.md).

>>> INPUT, OUTPUT
('images', 'logits')
"""

INPUT, OUTPUT = "images", "logits"


def signature_key(k: int) -> str:
    """The LiteRT signature (and subgraph) of configuration k.

    >>> signature_key(3)
    'k3'
    """
    return f"k{k}"
