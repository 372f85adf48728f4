"""EM-INF as a service: vLLM's OpenAI server with em-eval's processor, and the client side."""
