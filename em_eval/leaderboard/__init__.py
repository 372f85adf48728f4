"""``em-eval leaderboard``: lm-eval output folders -> Markdown/CSV tables, one HTML page, PNG plots."""
