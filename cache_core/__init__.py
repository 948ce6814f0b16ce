"""Cache node, trace readers, eviction policies, replay harness and access sampler."""
