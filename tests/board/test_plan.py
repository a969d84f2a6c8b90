from dyndnn.board.discovery import ClusterInfo, GpuInfo, Platform
from dyndnn.board.mapping import Mapping
from dyndnn.board.plan import default_mappings, plan_mappings


def platform(clusters=(), gpus=()):
    return Platform("/", "test", tuple(range(8)) if clusters else (0, 1), {}, clusters, gpus, ())


def cluster(name, cpus):
    return ClusterInfo(name, cpus, "", "schedutil", (), (), 0, 0, None, "userspace", True, False)


def test_default_mappings_without_cpufreq_use_one_and_all_cpus():
    assert default_mappings(platform()) == [Mapping("cpu", (0,), 1), Mapping("cpu", (0, 1), 2)]


def test_default_mappings_per_cluster_and_cuda():
    big_little = platform((cluster("policy0", (0, 1, 2, 3)), cluster("policy4", (4, 5, 6, 7))),
                          (GpuInfo("cuda", "cuda:0", "GPU"),))
    labels = [m.label for m in default_mappings(big_little)]
    assert labels == ["cpu[0]x1", "cpu[0-3]x4", "cpu[4]x1", "cpu[4-7]x4", "cpu[0-7]x8",
                      "cuda:0[0]x1"]


def test_plan_mappings_expands_auto_and_drops_duplicates():
    plan = plan_mappings(["cpu:0", "auto", "cpu:1x1"], platform())
    assert [m.label for m in plan] == ["cpu[0]x1", "cpu[0-1]x2", "cpu[1]x1"]
