"""Coverage-guided fuzzing of feed() -> readings -> JSON with atheris (libFuzzer).

    pip install atheris        # or: pip install -e '.[fuzz]'
    python fuzz/make_corpus.py                       # seeds from tests/seed_vectors.py
    python fuzz/fuzz_pipeline.py /tmp/work fuzz/corpus -max_total_time=60

libFuzzer writes new inputs to the first directory (keep it out of the
repository) and reads seeds from the others. Any uncaught exception, a hang
(``-timeout``) or memory above ``-rss_limit_mb`` stops the run with a non-zero
exit status and a ``crash-…``/``timeout-…`` file: copy it to
``fuzz/crashes/`` and it becomes a regression test (tests/test_properties.py).
"""

from __future__ import annotations

import sys

import atheris


def main() -> None:
    # Instrument amsread only: coverage of cryptography or click is noise.
    with atheris.instrument_imports(include=["amsread"]):
        pass
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from harness import one_input

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
