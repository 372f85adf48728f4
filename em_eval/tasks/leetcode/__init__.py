"""LeetCode (the paper's 180 problems) and LeetCodeDataset: extraction and the sandboxed judge."""
