"""The results store (SQLite): scores keyed so that reruns skip finished work."""
from trainfree.store.sqlite import SCHEMA_VERSION, Store, default_store_path

__all__ = ["SCHEMA_VERSION", "Store", "default_store_path"]
