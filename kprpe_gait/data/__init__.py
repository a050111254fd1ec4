"""Gait3D data tools: joints in the silhouette frame, and SynthGait.

* :mod:`~kprpe_gait.data.formats`: the on-disk contract (pickle names, joint convention, partition);
* :mod:`~kprpe_gait.data.crop`: OpenGait's silhouette crop with its geometry recorded;
* :mod:`~kprpe_gait.data.pretreat`: ``kprpe-gait pretreat-gait3d`` (raw frames + poses -> pickles);
* :mod:`~kprpe_gait.data.recover`: the same from OpenGait's silhouette pickles (estimated crops);
* :mod:`~kprpe_gait.data.synth`: ``kprpe-gait synth``, SynthGait (walker, renderer, misalignment);
* :mod:`~kprpe_gait.data.io`: file readers/writers (atomic), :mod:`~kprpe_gait.data.preview`: contact sheets.

Nothing is imported here, so ``import kprpe_gait.data.formats`` stays light.
"""
