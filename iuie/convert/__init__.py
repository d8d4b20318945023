"""Converters from common raw IE formats into the IE INSTRUCTIONS layout.

Formats (``iuie convert-data FORMAT SRC DST``; docs/converters.md shows an example of each):

* ``conll``  (:mod:`iuie.convert.conll`): CoNLL-style column files, BIO/IOB1/BIOES/IO tags -> NER.
* ``brat``   (:mod:`iuie.convert.brat`): BRAT standoff ``.txt`` + ``.ann`` pairs -> NER, RE or EE, one
  record per sentence (or per document).
* ``jsonl``  (:mod:`iuie.convert.jsonl`): one JSON object per line with character spans -> NER, RE or EE.
* ``fewrel`` (:mod:`iuie.convert.fewrel`): FewRel's ``{relation: [instances]}`` JSON -> RE.

Shared pieces: :mod:`~iuie.convert.labelmap` (codes to natural-language names, as the paper renamed
labels), :mod:`~iuie.convert.splits` (which input file is which split), :mod:`~iuie.convert.report`
(counts of everything dropped, changed or ignored; errors naming file and line) and
:mod:`~iuie.convert.pipeline` (:func:`~iuie.convert.pipeline.convert`: read, rename, write ``labels.json``
and the split files, load them back strictly).
"""
