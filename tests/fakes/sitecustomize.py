"""What the GPU machine lacks, made unimportable in a subprocess: papermill and Jupyter's parts.

The GPU reference script runs its stages from the command line; a stage that reached for one
of these would fail here as it would there.
"""

import sys

for _name in ("papermill", "nbformat", "nbclient", "ipykernel", "ipywidgets"):
    sys.modules[_name] = None
