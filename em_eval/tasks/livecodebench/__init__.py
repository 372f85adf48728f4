"""LiveCodeBench code generation (release_v2, the paper's 511 problems): loading, prompt, scoring."""
