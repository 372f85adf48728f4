"""SciCode: prompts, extraction, multi-step programs, the comparison rules and the lm-eval adapter."""
