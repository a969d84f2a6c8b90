"""dyndnn: a workbook for DNNs that scale their own cost at run time on embedded boards.

Modules, one concept each:

- ``config``: the validated run configuration (frozen dataclasses, one per section).
- ``data``: data sets by name, loaded once into memory, augmented batch-wise.
- ``models``: grouped layers and ``GroupAlexNet``, the dynamic network.
- ``train``: the incremental (group-by-group) trainer.
- ``evaluate``: accuracy and correct-class confidence per configuration.
- ``pipeline``: runs the notebooks in order with papermill and writes the manifest.
"""

__version__ = "0.1.0"
