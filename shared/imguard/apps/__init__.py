"""The two SCF functions, each an application over the shared library."""
