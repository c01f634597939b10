"""sae-search's core, with no web framework: the offline pipeline (corpus -> embeddings -> FAISS -> SAE -> codes ->
names -> families -> concepts -> artifacts, indexer/pipeline.py) and the query side over a loaded index (search,
steer, evidence, catalog, filters). service/ is thin HTTP over it."""
