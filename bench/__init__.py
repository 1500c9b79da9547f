"""Side-by-side benchmarks of keras_lm against peers (`python -m bench.run_all`)."""
