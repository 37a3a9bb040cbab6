import sys
from pathlib import Path

# Test helpers (seed_vectors, builders) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
