"""Privacy checks written from SCORING.md §5 alone, independent of the scoring engine."""
