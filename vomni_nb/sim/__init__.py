"""vomni-sim: a CPU server that speaks vLLM-Omni 0.30.0's OpenAI-compatible protocol.

It simulates; it does not run a model. ``/v1/models`` and the README say so.

The simulator imports nothing from the client side (``vomni_nb.protocol`` and up): it writes its own
WAV headers, SSE events and error bodies. That duplication is deliberate. The tests check the client
against this server, so shared code would hide symmetric bugs: a WAV header written wrong and read back
by the same wrong code, or an SSE framing slip made on both ends, would pass every test and break on a
real vLLM-Omni. Two independent implementations, each checked against the 0.30.0 source and its
pydantic models, catch what one could not.
"""
