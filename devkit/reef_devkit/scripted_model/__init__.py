"""A scripted model server speaking the Anthropic and OpenAI streaming APIs (see server.py)."""
