"""``python -m bench``: the end-to-end benchmark (``bench/bench_e2e.py``; same options)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_e2e import main  # noqa: E402

sys.exit(main())
