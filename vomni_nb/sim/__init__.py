"""vomni-sim: a CPU server that speaks vLLM-Omni 0.30.0's OpenAI-compatible protocol.

It simulates; it does not run a model. ``/v1/models`` and the README say so.
"""
