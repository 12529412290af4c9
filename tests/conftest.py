import reducedflow  # noqa: F401  (enables float64 before any test builds arrays)
import matplotlib

matplotlib.use("Agg")
