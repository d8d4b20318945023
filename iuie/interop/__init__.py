"""Checkpoint interop for FlanT5: Hugging Face and T5X weights in, Hugging Face weights out.

``iuie.interop.hf`` maps Hugging Face ``T5ForConditionalGeneration`` folders (safetensors or PyTorch ``.bin``,
single file or sharded) to and from the iuie parameter tree; ``iuie.interop.t5x`` reads T5X checkpoints (the
public Flan-T5 ``checkpoint_<step>`` folders among them) and Orbax checkpoints of iuie parameters. The iuie
parameter tree is T5X's T5 1.1 tree (``token_embedder``, ``encoder/layers_{i}/...``, ``decoder/logits_dense``),
so T5X weights need no renaming. ``iuie.interop.reader.read_params`` is the one entry every caller reads
parameters with: it detects the format (iuie training run, exported iuie, Hugging Face, T5X) and resolves
relative paths. Nothing here downloads anything: point the loaders at local folders.
"""
