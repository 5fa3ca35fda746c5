"""The Gemstones decoders (McLeish et al., NeurIPS 2025) as a space: width x depth shapes of one family."""
