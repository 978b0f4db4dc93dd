"""Shared test helpers (not fixtures): see sims.py and vllm_omni_models.py."""
