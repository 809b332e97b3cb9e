"""Result records (one JSON per model and task) and their rendering."""
