"""Document RAG: namespaces of documents to answer from, chunked, embedded and searched."""
