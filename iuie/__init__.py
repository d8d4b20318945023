"""iuie: InstructUIE (unified information extraction by instruction tuning) as a JAX system.

The package has two chains that never import each other:

* the data side: ``records`` -> ``instructions`` / ``formats`` -> ``parsing`` -> ``metrics``;
* the model side: ``layers`` -> ``network`` -> ``models`` (+ the leaf modules ``losses`` and ``decoding``).

The trainer joins them; only the binaries and ``cli`` know everything. Importing ``iuie`` imports nothing
heavy: import the module you need.
"""

__version__ = "0.1.0"
