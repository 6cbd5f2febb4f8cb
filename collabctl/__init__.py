"""collabctl: scene access, participants and development tokens, for the local stack and
for AWS (`python -m collabctl --help`).

It reuses the Lambda code (functions/collab) rather than repeating it; that folder is a
source root of its own (as in Lambda), so it is put on the path when run from a checkout.
"""

from __future__ import annotations

import sys
from pathlib import Path

_FUNCTIONS = str(Path(__file__).resolve().parent.parent / "functions")
if _FUNCTIONS not in sys.path:
    sys.path.append(_FUNCTIONS)
