"""Shipped data: corpora and benchmark files (see DATA.md for sources and licences)."""
from trainfree.data.corpora import CORPORA, Corpus, batchify, load_corpus, paper_window

__all__ = ["CORPORA", "Corpus", "batchify", "load_corpus", "paper_window", "data_path"]


def data_path(*parts: str):
    """Path of a shipped data file."""
    from importlib.resources import files

    return files("trainfree.data").joinpath(*parts)
