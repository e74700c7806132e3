import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402

# One intra-op thread, as the command line's default: on small shared machines torch's default thread
# pool thrashes (the suite took 6-7 min instead of 1.6 min beside other work).
torch.set_num_threads(1)

import pytest  # noqa: E402

#: node ids measured slow in the quick tier (``tests/measured_slow.txt``), marked ``slow`` at collection
MEASURED_SLOW = Path(__file__).with_name("measured_slow.txt")


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201 - pytest's hook signature
    slow = {line.strip() for line in MEASURED_SLOW.read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)
