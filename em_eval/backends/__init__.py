"""lm-eval model classes: ``em_inf`` (HF transformers) and ``em_inf_vllm`` (vLLM)."""
