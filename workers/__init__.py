"""RQ workers: generation jobs, index jobs."""
