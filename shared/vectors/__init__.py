"""Memory: message and snippet embeddings in Qdrant, hybrid (dense + sparse) search."""
