"""After-call automations: apps run on call events (seeds 001 and 004)."""
