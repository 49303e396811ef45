// Placeholder: filled in by the Redis work.
