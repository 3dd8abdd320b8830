"""Research scripts: one-off analyses behind figures of the README, run as ``python -m synth_probe.research.NAME``.

``cutoff_identifiability`` (where the cutoff knob is lost), ``specialists`` (one-target models against the
suite), ``cnn_inputs`` (the CNN on other inputs), ``refine_discrete`` (discrete choices refined by rendering).
They read a finished predictability run or a dataset; none is imported by the library.
"""
