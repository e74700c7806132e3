import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch  # noqa: E402

# One intra-op thread, as the command line's default: on small shared machines torch's default thread
# pool thrashes (the suite took 6-7 min instead of 1.6 min beside other work).
torch.set_num_threads(1)
