"""Report kinds beyond the run's own tables: the leaderboard, its LaTeX table, trends over runs."""
