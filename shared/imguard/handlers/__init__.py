"""im_callback's handlers, one module per family of IM callbacks."""
