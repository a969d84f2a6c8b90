"""The names a config may give, and the keys that decide trained weights.

The names validated here live here; the modules that implement them check they agree
(tests/test_config.py), so reading a config never imports torch, the board code or RCT.
"""

DATASETS = ("fashion-mnist-mini", "fashion-mnist", "cifar10")
# text data sets (dyndnn.data.text.TEXT_SPECS): not for the image stages, which refuse them;
# the RCT stage trains on them through rct.text_dataset
TEXT_DATASETS = ("wordnet-supersense-mini", "wordnet-supersense")
# the model families (dyndnn.models.FAMILIES): the group model and the three baselines
MODELS = ("group", "independent", "tann", "slimmable")
# the built-in networks (dyndnn.models.architecture.BUILTIN); model.architecture may also be
# a YAML file
ARCHITECTURES = ("alexnet", "resnet20", "resnet18", "mobilenet")
JOINTLY_TRAINED = ("slimmable",)  # families trained in one joint stage, not G
METERS = ("auto", "rapl", "ina231", "ina3221", "nvml", "modelled")  # dyndnn.board.auto
ROUNDINGS = ("nearest", "stochastic")  # dyndnn.rct.quant
RCT_BITS = (2, 16)  # the bitwidths dyndnn.rct.quant can hold (MIN_BITS, MAX_BITS)
# the flat keys that change trained weights: a run folder resumes only when these agree
TRAINING_KEYS = ("dataset", "train_limit", "val_fraction", "batch_size", "augment", "groups",
                 "architecture", "width", "dropout", "combine", "baseline_budget",
                 "epochs_per_stage", "joint_stage_factor", "optimizer", "lr", "momentum",
                 "weight_decay", "schedule", "label_smoothing", "seed")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant", "onecycle")
# inference engines the profiler measures: PyTorch eager (training side), onnxruntime (boards),
# OpenVINO (Intel CPUs; the optional openvino package), ExecuTorch (PyTorch's on-device
# runtime, XNNPACK; the optional executorch package), LiteRT (Google's on-device runtime,
# XNNPACK; the optional ai-edge-litert package); dyndnn.serve.engines builds them
BACKENDS = ("eager", "onnxruntime", "openvino", "executorch", "litert")
DEFAULT_BACKENDS = ("eager", "onnxruntime")  # what a config profiles unless it names others
DEVICES = ("cpu", "cuda")  # where training runs
DISTRIBUTED_BACKENDS = ("gloo", "nccl")  # torch.distributed: gloo on CPUs, NCCL on GPUs
TEXT_MODELS = ("conv", "transformer")  # dyndnn.models.text.TEXT_MODELS, without torch
