"""imguard: content moderation callbacks for Tencent Cloud IM, on Tencent SCF."""
import time

__version__ = "0.1.0"

# When this process began importing imguard: for a new SCF instance, when its cold start began
# (index.py imports imguard first). IM's 2 s were already running then.
IMPORTED_AT = time.monotonic()
