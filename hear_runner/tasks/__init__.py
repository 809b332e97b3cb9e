"""Task input: hear-preprocess task folders, read as they are."""
