"""How a backend turns prompts into answers: the decode methods (sampling, EM-INF, self-consistency,
best-of-N...) and SciCode's multi-step generation."""
