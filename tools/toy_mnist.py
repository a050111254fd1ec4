"""KP-RPE toy study (paper Fig. 1): a shallow ViT trained on centred MNIST, tested on unseen affine maps.

    python tools/toy_mnist.py            # the full study: 9 encodings x 3 seeds, ~1.5 h on 2 CPU cores
    python tools/toy_mnist.py --quick    # smoke run (seconds)
    python tools/toy_mnist.py --help

Writes ``results.json``, ``results.md`` and ``toy_mnist.png`` to ``benchmarks/toy_mnist/`` and resumes
an interrupted study. The code lives in the package ``tools/toy_mnist/``: run as a script, this file's
folder is ``sys.path[0]``, where the package ``toy_mnist`` takes precedence over this module's name.
"""

import sys

from toy_mnist.cli import main

if __name__ == "__main__":
    sys.exit(main())
