"""imguard: content moderation callbacks for Tencent Cloud IM, on Tencent SCF."""

__version__ = "0.1.0"
