"""Beyond one message: floods, repeat offenders and the mutes they earn, counted across instances."""
