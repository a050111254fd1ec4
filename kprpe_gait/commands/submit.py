"""``kprpe-gait submit``: rank a test set with a checkpoint, print its metrics, write leaderboard files.

::

    kprpe-gait submit --config CONFIG --checkpoint ckpt.pt --data GREW-pkl \\
        --partition OpenGait/datasets/GREW/GREW.json --out sub/        # -> sub/submission.zip for GREW

The steps, the benchmarks and their files are :mod:`kprpe_gait.eval.submit`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "rank a test set with a checkpoint and write submission files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kprpe_gait.eval.metrics import METRICS
    from kprpe_gait.eval.rerank import RERANK_K1, RERANK_K2, RERANK_LAMBDA
    from kprpe_gait.eval.submission import GREW_FORMS, GREW_TOP_K
    from kprpe_gait.eval.submit import BENCHMARKS, FORMATS, PROBE_IDS

    parser.add_argument("--config", required=True, type=Path, help="OpenGait-style YAML with a model_cfg section")
    parser.add_argument("--checkpoint", required=True, type=Path, help="weights (OpenGait's or the compact trainer's)")
    parser.add_argument("--data", type=Path, help="OpenGait pickle root (default: data_cfg.dataset_root)")
    parser.add_argument("--partition", type=Path,
                        help="partition JSON, e.g. OpenGait's GREW.json / HID.json / Gait3D.json as they are "
                             "(default: evaluator_cfg.partition, else data_cfg.dataset_partition)")  # fmt: skip
    parser.add_argument("--out", required=True, type=Path, help="folder for the submission files")
    parser.add_argument("--benchmark", choices=("auto", *BENCHMARKS), default="auto",
                        help="probe/gallery rule and files (auto: from eval_func, dataset_name or PROBE_SET)")  # fmt: skip
    parser.add_argument("--metric", choices=METRICS, help="distance (default: evaluator_cfg.metric, else euc)")
    parser.add_argument("--formats", default=None,
                        help=f"comma-separated subset of {','.join(FORMATS)} (default: the benchmark's files)")  # fmt: skip
    parser.add_argument("--rerank", action="store_true",
                        help=f"k-reciprocal re-ranking (OpenGait's re_ranking, k1={RERANK_K1}, k2={RERANK_K2}, "
                             f"lambda={RERANK_LAMBDA})")  # fmt: skip
    parser.add_argument("--grew-form", choices=GREW_FORMS, default="opengait",
                        help="GREW file: opengait (OpenGait's GREW_submission, default) or template "
                             "(GREW-Benchmark's template: + rank1_distractor column, CRLF)")  # fmt: skip
    parser.add_argument("--probe-id", choices=PROBE_IDS, default="view",
                        help="folder level written as the probe id of GREW/HID/MGR rows (default: view, as OpenGait)")  # fmt: skip
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--top-k", type=int, default=GREW_TOP_K, help="ranks per probe in the GREW file")
    parser.add_argument("--cut", type=int, default=None,
                        help="columns cut from each side (default: from evaluator_cfg.transform)")  # fmt: skip
    parser.add_argument("--batch-frames", type=int, default=720, help="frames per forward pass at most")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kprpe_gait.eval.submit import _parse_formats, submit

    try:
        submit(
            config=args.config,
            checkpoint=args.checkpoint,
            out=args.out,
            data=args.data,
            partition=args.partition,
            metric=args.metric,
            formats=None if args.formats is None else _parse_formats(args.formats),
            device=args.device,
            top_k=args.top_k,
            cut=args.cut,
            batch_frames=args.batch_frames,
            progress=not args.no_progress,
            benchmark=args.benchmark,
            rerank=args.rerank,
            grew_form=args.grew_form,
            probe_id=args.probe_id,
        )
    except (FileNotFoundError, ValueError, KeyError, TypeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"kprpe-gait submit: error: {message}", file=sys.stderr)
        return 1
    return 0
