from __future__ import annotations

import sys  # rootdir-less test imports: emva_helpers, reference_harness
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
