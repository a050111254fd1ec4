"""kprpe_gait: SwinGait-2D with window KP-RPE as an OpenGait plugin, Gait3D data tools and metrics.

Sub-packages:

* ``kprpe_gait.models``: the network, pure PyTorch (never imports OpenGait);
* ``kprpe_gait.opengait``: the only code that imports OpenGait (model classes, launcher, shim,
  transforms, evaluator);
* ``kprpe_gait.data``: Gait3D pretreatment (joints in the silhouette frame) and SynthGait;
* ``kprpe_gait.eval``: Rank-k / mAP / mINP and submission files.
"""
