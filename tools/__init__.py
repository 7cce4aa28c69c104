"""Development tools beside the stages: benchmark, clean, an independent generator and the baseline."""
