"""Graders: math answers, code extraction, SciCode comparison rules."""
