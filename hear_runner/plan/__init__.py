"""`hear plan`: what a run would do and how long it would take, known without running it."""
