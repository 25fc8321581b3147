"""Answering a question: route -> retrieve -> prompt -> generate -> cite, the prompt builder,
the Answer records and the quoted evidence."""
