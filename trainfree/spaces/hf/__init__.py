"""Search spaces over Hugging Face ``transformers`` configs (the ``trainfree[hf]`` extra).

A space file (TOML or JSON, docs/spaces.md "Spaces of your own: transformers configs") names a model
class, fixed config fields, searched fields with their choices, and constraints; an architecture is
the dict of searched fields. ``transformers`` builds the models; nothing is downloaded. Modules:
``spec`` (reading and validating a space file), ``model`` (configs, seeded models, their loss),
``inputs`` (WordPiece token batches of the shipped corpora), ``artefacts`` (what metrics read),
``space`` (the SearchSpace and the shipped ``hf-llama`` / ``hf-gpt2``).
"""
from __future__ import annotations

from trainfree.errors import MissingExtra


def transformers():
    """The ``transformers`` module, or an error naming the extra that installs it."""
    try:
        import transformers as module
    except ImportError:
        raise MissingExtra("the hf spaces need Hugging Face transformers: pip install 'trainfree[hf]'") from None
    return module
