"""Offline indexing pipeline for sae-search: corpus -> embeddings -> SAE -> codes -> names -> families -> FAISS."""
