"""Side-by-side benchmarks of atoma-async against a bare aiohttp + msgspec loop, openai-python and
atoma-sdk 0.1.3 (issue 5). Run `python -m benchmarks.run [--quick]`; see README.md.

Standard library only at package level: the atoma-sdk client runs from its own venv.
"""
