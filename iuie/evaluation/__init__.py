"""Evaluation: decoding the registered iuie Tasks and scoring them in both metric modes.

``iuie.evaluation.predict`` decodes (sharded over the data axis and the processes, length-bucketed, each
example once) and ``iuie.evaluation.seqio_eval`` runs seqio's ``Evaluator`` on the decodes, builds the
per-dataset reports and writes the result files. ``iuie.train`` (evaluation during training), ``iuie.eval``
and ``iuie.infer`` all use these; they join the model chain (decoding) and the data chain (metrics, reports).
"""
