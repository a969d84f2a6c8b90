"""Training the dynamic network: the incremental trainer, torchrun worlds, the launcher.

``trainer`` (``IncrementalTrainer``: stage by stage, frozen groups exact, resume by epoch),
``distributed`` (a torchrun world: ranks, shards, DDP, who writes), ``launch`` (the train
stage in N processes: torchrun started from the stage, which never imports it back). The BN
that every family's layers call in their forward lives with the layers
(``dyndnn.models.sync_batchnorm``), so ``models`` never imports ``training``.
"""
