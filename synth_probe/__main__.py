import sys

from synth_probe.cli import main

sys.exit(main())
