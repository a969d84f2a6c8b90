"""dyndnn: a workbook for DNNs that scale their own cost at run time on embedded boards.

Modules, one concept each:

- ``config``: the validated run configuration (frozen dataclasses, one per section).
- ``data``: data sets by name, loaded once into memory, augmented batch-wise.
- ``models``: ``GroupNet``, the dynamic network, and the baselines it is compared with
  (independent models, Tann et al.'s incremental network, a slimmable network).
- ``train``: one trainer for every model family (group by group, or jointly for slimmable).
- ``evaluate``: accuracy and correct-class confidence per configuration.
- ``pipeline``: runs the notebooks in order with papermill and writes the manifest.
"""

__version__ = "0.1.0"
