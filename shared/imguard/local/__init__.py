"""Running the functions on a developer's machine."""
