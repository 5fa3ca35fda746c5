"""Decoder-only language models (LTS's GPT-2 and Transformer-XL families)."""
