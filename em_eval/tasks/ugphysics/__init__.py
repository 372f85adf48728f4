"""UGPhysics Semiconductor Physics (the paper's physics column): prompts, the answer-type-aware
judge and the lm-eval adapter."""
