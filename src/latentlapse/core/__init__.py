"""The generic core: films any classifier; imports nothing of the X-ray application."""
