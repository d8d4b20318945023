"""Serve a checkpoint over HTTP: a JSON API with dynamic batching, and a page that draws what it finds.

Example::

    iuie serve --checkpoint /tmp/iuie_demo               # then open http://127.0.0.1:8080/
    curl -s localhost:8080/v1/extract -H 'content-type: application/json' \\
      -d '{"text": "Anna Berg lives in Oslo .", "task": "ner", "labels": ["person", "location"]}'

Every decode shape (batch rows x input length) is compiled before the server takes its first request.
``--max-batch 1`` switches batching off. See docs/serving.md (API, limits, errors, figures).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", required=True, help="an iuie MODEL_DIR or checkpoint folder, a Hugging Face or a T5X checkpoint"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--vocab", default=None, help="SentencePiece model (default: IUIE_VOCAB or the project's)")
    parser.add_argument(
        "--max-input-tokens", type=int, default=None, help="window budget (default: the run's trained input length)"
    )
    parser.add_argument("--max-decode-length", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=32, help="texts one batch gathers at most (1: no batching)")
    parser.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="rows of one decode at most: a bigger batch decodes in several (default: 8 on CPU, else --max-batch)",
    )
    parser.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a batch waits for more requests")
    parser.add_argument(
        "--row-buckets", default=None, help="comma-separated decode row sizes to compile (default: 1,2,4,...,max rows)"
    )
    parser.add_argument("--max-text-chars", type=int, default=10_000, help="longest text accepted (characters)")
    parser.add_argument("--max-texts", type=int, default=32, help="most texts in one request")
    parser.add_argument("--max-labels", type=int, default=64, help="most labels (and roles) in one request")
    parser.add_argument("--no-constrained", action="store_true", help="do not offer constrained decoding")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _fail(message: str) -> int:
    print(f"iuie serve: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    if not os.path.exists(args.checkpoint):
        return _fail(f"checkpoint {args.checkpoint!r} does not exist")
    for name in ("max_batch", "max_rows", "max_text_chars", "max_texts", "max_labels", "max_decode_length"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            return _fail(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= args.port <= 65535:
        return _fail(f"--port {args.port} is not a port number")
    buckets = None
    if args.row_buckets:
        try:
            buckets = [int(b) for b in args.row_buckets.split(",") if b.strip()]
        except ValueError:
            return _fail(f"--row-buckets {args.row_buckets!r} is not a comma-separated list of integers")
        if not buckets or min(buckets) < 1:
            return _fail("--row-buckets: sizes must be at least 1")
    try:
        import uvicorn

        from iuie.serving.app import app_for_engine
        from iuie.serving.engine import Engine
        from iuie.serving.schema import Limits
    except ImportError as e:
        return _fail(f"{e.name} is missing: pip install 'iuie[serve]'")
    from iuie.interop.hf import CheckpointError

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s: %(message)s")
    try:
        engine = Engine.from_checkpoint(
            args.checkpoint,
            args.vocab,
            max_input_tokens=args.max_input_tokens,
            max_decode_length=args.max_decode_length,
            max_batch=args.max_batch,
            max_rows=args.max_rows,
            row_buckets=buckets,
            constrained=not args.no_constrained,
        )
    except (FileNotFoundError, CheckpointError, ValueError) as e:
        return _fail(f"cannot load checkpoint {args.checkpoint!r}: {e}")
    limits = Limits(max_text_chars=args.max_text_chars, max_texts=args.max_texts, max_labels=args.max_labels)
    app = app_for_engine(engine, limits=limits, max_wait_ms=args.max_wait_ms)
    # Keep-alive longer than uvicorn's 5 s: a client waiting between requests keeps its connection.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_keep_alive=30)
    return 0
