"""The names of a model's input and output in every engine's graphs (ONNX, LiteRT signatures).

A board's code feeds ``images`` (float32, N x C x H x W) and reads ``logits`` whatever the
engine, so the names live here, apart from the writers that need torch.

>>> INPUT, OUTPUT
('images', 'logits')
"""

INPUT, OUTPUT = "images", "logits"
