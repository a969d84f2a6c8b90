"""What importing a stage costs: every kernel, CLI call and worker process of a run pays it."""

import json
import subprocess
import sys

STAGES = ["train", "evaluate", "profile", "analyse", "explore", "rct", "runtime",
          "profile_bundle"]
# each costs about half a second to import and only some of a stage's work needs it: onnx
# (its ml_dtypes) to build or pack graphs, seaborn (scipy.stats) to draw a figure
HEAVY = {"onnx", "ml_dtypes", "seaborn", "scipy"}


def test_importing_a_stage_leaves_out_what_only_some_of_its_work_needs():
    script = ("import json, sys\n"
              + "".join(f"import dyndnn.stages.{name}\n" for name in STAGES)
              + "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "torch" in loaded and "pandas" in loaded  # the script did import the stages
    assert loaded & HEAVY == set()
