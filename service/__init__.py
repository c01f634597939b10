"""HTTP API of sae-search: a thin FastAPI layer over one loaded index (`indexer.search.Searcher`)."""
