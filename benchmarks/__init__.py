"""Side-by-side benchmarks of lib (make bench)."""
