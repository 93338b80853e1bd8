"""The `signpose` console script.

    signpose recognise --model results/<name>/model VIDEO... [--top 5] [--json] [--tflite]
                       [--start S --end S] [--bbox X0 Y0 X1 Y1] [--verbose]

Prints the top-k glosses of each video. With --json, standard output holds one JSON object per
video and nothing else; errors and timings always go to standard error, one line each. The exit
status is 0 when every video was recognised, 1 when some were not, 2 for a bad command line or
model folder (nothing recognised).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

EXIT_SOME_FAILED = 1
EXIT_UNUSABLE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signpose")
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser(
        "recognise",
        help="the glosses a trained model sees in new videos",
        description="Rerun the training run's chain (clip, MediaPipe Holistic, features, "
        "train-only statistics, label map) on each video and print its most probable glosses.",
    )
    rec.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    rec.add_argument("--model", required=True, help="a model folder, e.g. results/demo/model")
    rec.add_argument("--top", type=_positive, default=5, help="glosses per video (default 5)")
    rec.add_argument("--json", action="store_true", help="one JSON object per video on stdout")
    rec.add_argument(
        "--tflite",
        action="store_true",
        help="use the folder's model_landmarks.tflite (raw landmarks in) instead of Keras",
    )
    rec.add_argument("--start", type=_seconds, default=0.0, help="start of the sign, seconds")
    rec.add_argument("--end", type=_seconds, default=None, help="end of the sign, seconds")
    rec.add_argument(
        "--bbox",
        type=float,
        nargs=4,
        metavar=("X0", "Y0", "X1", "Y1"),
        help="the signer's box in video pixels, cropped as the training clips were",
    )
    rec.add_argument(
        "--verbose",
        action="store_true",
        help="seconds per video, and TensorFlow's and MediaPipe's own logs, on stderr",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a time in seconds >= 0, got {text}")
    return value


def _quiet_native_logs() -> None:
    """Send TensorFlow's and MediaPipe's C++ log lines to /dev/null, keep Python's stderr.

    Their start-up chatter (dozens of lines, some written before any log setting is read)
    would bury the one-line errors, so the C++ side's file descriptor 2 is replaced, while
    Python's `sys.stderr` (our messages, tracebacks) keeps writing to the real one.
    """
    sys.stderr.flush()
    sys.stderr = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def recognise(args: argparse.Namespace) -> int:
    from signpose import recognise as rec

    if args.end is not None and args.end <= args.start:
        print(f"signpose recognise: --end {args.end} is not after --start {args.start}",
              file=sys.stderr)  # fmt: skip
        return EXIT_UNUSABLE
    try:
        folder = rec.open_model_folder(args.model)
        # MediaPipe first: imported after TensorFlow it would load TensorFlow's own helpers too.
        from signpose.compat.mediapipe import import_mediapipe

        import_mediapipe()
        model = rec.Recogniser(folder, tflite=args.tflite)
    except rec.ModelFolderError as e:
        print(f"signpose recognise: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    failed = 0
    for video in args.videos:
        started = time.perf_counter()
        try:
            marks = rec.video_landmarks(video, folder, args.start, args.end, args.bbox)
            predictions = rec.ranked(model.probabilities(marks), folder.labels, args.top)
        except rec.VideoError as e:
            print(f"signpose recognise: {e}", file=sys.stderr)
            failed += 1
            continue
        if args.json:
            print(json.dumps({"video": video, "predictions": predictions}, ensure_ascii=False))
        else:
            print(video)
            for rank, p in enumerate(predictions, start=1):
                print(f"  {rank}. {p['gloss']}  {p['probability']:.4f}")
        sys.stdout.flush()
        if args.verbose:
            print(f"signpose recognise: {video}: {time.perf_counter() - started:.2f} s",
                  file=sys.stderr)  # fmt: skip
    return EXIT_SOME_FAILED if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.verbose:
        _quiet_native_logs()
    return recognise(args)


if __name__ == "__main__":
    sys.exit(main())
