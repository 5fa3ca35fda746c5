"""The results store (SQLite): scores keyed so that reruns skip finished work; and the shipped suite
(:mod:`trainfree.store.shipped`), read as a store the scoring loop takes keys from."""
from trainfree.store.sqlite import SCHEMA_VERSION, Store, default_store_path

__all__ = ["SCHEMA_VERSION", "Store", "default_store_path"]
