"""How a backend turns prompts into answers beyond one sample: self-consistency and iterative refinement
(with what each task declares for them) and SciCode's multi-step generation."""
