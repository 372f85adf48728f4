"""The prompts every throughput bench generates from, so HF and vLLM figures use the same work."""

PROMPTS = [
    "Solve: what is the sum of the first ten positive integers? Explain step by step.",
    "Write a short proof that the square root of two is irrational.",
    "A train travels 60 km in 45 minutes. What is its average speed in km/h?",
    "List three prime numbers greater than 50 and explain how you checked them.",
    "If 3x + 7 = 22, what is x? Show your work.",
    "Explain why the derivative of x^2 is 2x using the limit definition.",
    "How many ways can you arrange the letters of the word LEVEL?",
    "What is the probability of rolling two sixes with two fair dice?",
]


def prompts_for(n: int) -> list[str]:
    """``n`` prompts, cycling through :data:`PROMPTS`."""
    return [PROMPTS[i % len(PROMPTS)] for i in range(n)]
